"""The Repository contract. Every backend must pass it: the ``repo`` fixture runs each test on SQLite and on
PostgreSQL (a fresh database per test session; skipped without a server, a failure with
FOREWARN_REQUIRE_SERVICES=1)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from forewarn.core.model import OperationState, Party, ProtectedSite
from forewarn.core.records import NoticeOutcome
from forewarn.store import Repository, SQLiteRepository
from tests.builders import agreement, circle, operation
from tests.conftest import T0

BACKENDS = ("sqlite", "postgres")


@pytest.fixture(params=BACKENDS)
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Repository]:
    if request.param == "sqlite":
        sqlite = SQLiteRepository(tmp_path / "contract.sqlite")
        yield sqlite
        sqlite.close()
    else:
        yield request.getfixturevalue("postgres_repo")


def _seed(repo: Repository) -> None:
    for pid in ("x", "y"):
        repo.put_party(Party(id=pid, name=pid.upper()))


def _outcome(op_id: str, version: int = 1) -> NoticeOutcome:
    return NoticeOutcome(notice_id=None, kind="notify", operation_id=op_id, version=version, party_id="x",
                         activity_class="transport", at=T0, lead_times=[], conflicts=[], site_warnings=[],
                         resolutions=[], impacts=[])


def test_schema_is_migrated(repo: Repository) -> None:
    assert repo.schema_version() >= 1


def test_parties_agreements_sites_round_trip_and_upsert(repo: Repository) -> None:
    _seed(repo)
    repo.put_party(Party(id="x", name="renamed"))
    assert [p.name for p in repo.list_parties()] == ["renamed", "Y"]
    ag = agreement("ag", ["x", "y"])
    repo.put_agreement(ag)
    assert repo.get_agreement("ag") == ag
    site = ProtectedSite(id="h1", name="Hospital", category="hospital", registered_by="y", point=(38.0, 35.0))
    repo.put_site(site)
    assert repo.list_sites() == [site]
    assert repo.get_site("nope") is None


def test_versions_are_kept_and_latest_is_current(repo: Repository) -> None:
    _seed(repo)
    v1 = operation("op", "x", [circle(38, 35)], notified_at=T0)
    repo.add_operation_version(v1, T0)
    v2 = v1.model_copy(update={"version": 2, "volumes": [circle(39, 35)]})
    repo.add_operation_version(v2, T0 + timedelta(minutes=5))
    current = repo.get_operation("op")
    assert current is not None and current.version == 2 and current.volumes == v2.volumes
    assert [o.version for o in repo.operation_versions("op")] == [1, 2]
    first = repo.get_operation("op", version=1)
    assert first is not None and first.volumes == v1.volumes
    with pytest.raises(LookupError):  # version 2 again: not at version 1 any more
        repo.add_operation_version(v2, T0)


def test_state_changes_and_live_listing(repo: Repository) -> None:
    _seed(repo)
    repo.add_operation_version(operation("a", "x", [circle(38, 35)], notified_at=T0), T0)
    repo.add_operation_version(operation("b", "y", [circle(38, 35)], notified_at=T0), T0)
    repo.set_operation_state("b", OperationState.CANCELLED, T0)
    assert [o.id for o in repo.iter_live_operations()] == ["a"]
    assert [o.id for o in repo.list_operations(party_id="y")] == ["b"]
    assert [o.id for o in repo.list_operations([OperationState.CANCELLED])] == ["b"]


def test_failed_transaction_changes_nothing(repo: Repository) -> None:
    _seed(repo)
    with pytest.raises(RuntimeError), repo.transaction():
        repo.add_operation_version(operation("a", "x", [circle(38, 35)], notified_at=T0), T0)
        repo.add_notice(_outcome("a"))
        raise RuntimeError("crash between writes")
    assert repo.get_operation("a") is None
    assert repo.list_notices() == []


def test_foreign_keys_are_enforced(repo: Repository) -> None:
    with pytest.raises(Exception, match=r"(?i)foreign key"):
        repo.add_operation_version(operation("a", "ghost", [circle(38, 35)]), T0)
    assert repo.list_operations() == []


def test_notices_round_trip(repo: Repository) -> None:
    _seed(repo)
    repo.add_operation_version(operation("a", "x", [circle(38, 35)], notified_at=T0), T0)
    notice_id = repo.add_notice(_outcome("a"))
    [stored] = repo.list_notices("a")
    assert stored.id == notice_id and stored.outcome.notice_id == notice_id and stored.at == T0


def test_data_persists_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "persist.sqlite"
    first = SQLiteRepository(path)
    _seed(first)
    first.add_operation_version(operation("a", "x", [circle(38, 35)], notified_at=T0), T0)
    first_version = first.schema_version()
    first.close()
    again = SQLiteRepository(path)
    assert [o.id for o in again.iter_live_operations()] == ["a"]
    assert again.schema_version() == first_version


def test_credentials_and_issuer_key(repo: Repository) -> None:
    from forewarn.core.credentials import new_credential, verify_secret

    _seed(repo)
    cred, secret = new_credential("x", ["read"], T0)
    repo.put_credential(cred)
    stored = repo.get_credential(cred.client_id)
    assert stored == cred and verify_secret(secret, stored.secret_hash)
    assert not verify_secret("nope", stored.secret_hash)
    assert repo.list_credentials("x") == [cred] and repo.list_credentials("y") == []
    assert repo.get_issuer_key() is None
    from forewarn.service.tokens import IssuerKey

    key = IssuerKey.generate()
    repo.put_issuer_key("k1", key.private_pem(), T0)
    assert repo.get_issuer_key() == ("k1", key.private_pem())
    assert [kid for kid, _ in repo.list_issuer_keys()] == ["k1"]


def test_deliveries_outbox_queries(repo: Repository) -> None:
    from forewarn.core.records import Delivery

    _seed(repo)

    def delivery(did: str, party: str, **kw: object) -> Delivery:
        fields: dict[str, object] = {"reason": "agreement", **kw}
        return Delivery.model_validate({"id": did, "notice_id": None, "party_id": party, "payload": {"n": did},
                                        "created_at": T0, **fields})

    repo.add_deliveries([
        delivery("d1", "x", ack_deadline=T0 + timedelta(minutes=15), next_attempt_at=T0),
        delivery("d2", "y", ack_deadline=T0 + timedelta(minutes=5)),
        delivery("d3", "x", channel="backup", reason="escalation", escalation_of="d1"),
    ])
    got = repo.list_deliveries("x")
    assert [d.id for d in got] == ["d1", "d3"] and got[0].seq < got[1].seq and got[0].payload == {"n": "d1"}
    assert [d.id for d in repo.list_deliveries("x", after_seq=got[0].seq)] == ["d3"]
    assert [d.id for d in repo.due_webhook_deliveries(T0)] == ["d1"]
    assert [d.id for d in repo.overdue_acknowledgements(T0 + timedelta(minutes=10))] == ["d2"]
    d1 = got[0].model_copy(update={"delivered_at": T0, "acked_at": T0 + timedelta(minutes=1), "attempts": 1})
    repo.update_delivery(d1)
    assert repo.get_delivery("d1") == d1
    d2, d3 = repo.get_delivery("d2"), repo.get_delivery("d3")
    assert d2 is not None and d3 is not None
    d2 = d2.model_copy(update={"first_sent_at": T0, "attempts": 2, "last_error": "HTTP 500", "late": True})
    d3 = d3.model_copy(update={"delivered_at": T0, "lead_time_s": 12.5})
    repo.update_deliveries([d2, d3])
    repo.update_deliveries([])
    assert (repo.get_delivery("d1"), repo.get_delivery("d2"), repo.get_delivery("d3")) == (d1, d2, d3)
    d2 = d2.model_copy(update={"first_sent_at": None, "attempts": 0, "last_error": None, "late": False})
    repo.update_deliveries([d2])
    assert repo.get_delivery("d2") == d2
    assert repo.due_webhook_deliveries(T0 + timedelta(hours=1)) == []
    assert [d.id for d in repo.overdue_acknowledgements(T0 + timedelta(hours=1))] == ["d2"]
    with pytest.raises(Exception, match=r"(?i)unique"):
        repo.add_deliveries([delivery("d1", "x")])


def test_idempotency_and_subscriptions(repo: Repository) -> None:
    from forewarn.core.model import Subscription

    _seed(repo)
    assert repo.get_idempotent("x", "k") is None
    repo.put_idempotent("x", "k", "h", 201, '{"ok": 1}', T0)
    assert repo.get_idempotent("x", "k") == ("h", 201, '{"ok": 1}')
    assert repo.get_idempotent("y", "k") is None
    sub = Subscription(id="s1", party_id="y", volume=circle(38, 35))
    repo.put_subscription(sub)
    assert repo.list_subscriptions() == [sub] and repo.list_subscriptions("x") == []
    repo.delete_subscription("s1", "x")  # not x's: nothing happens
    assert repo.list_subscriptions() == [sub]
    repo.delete_subscription("s1", "y")
    assert repo.list_subscriptions() == []


def test_subscription_ids_are_per_party(repo: Repository) -> None:
    """Issue 20: x using an id y holds neither fails nor touches y's subscription."""
    from forewarn.core.model import Subscription

    _seed(repo)
    theirs = Subscription(id="s1", party_id="y", volume=circle(38, 35))
    mine = Subscription(id="s1", party_id="x", volume=circle(39, 36))
    repo.put_subscription(theirs)
    repo.put_subscription(mine)
    assert repo.list_subscriptions("x") == [mine] and repo.list_subscriptions("y") == [theirs]
    repo.put_subscription(mine.model_copy(update={"volume": circle(40, 36)}))
    assert repo.list_subscriptions("y") == [theirs]
    repo.delete_subscription("s1", "x")
    assert repo.list_subscriptions() == [theirs]
