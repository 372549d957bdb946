"""The service over both backends (file, conflict, deliver, acknowledge, escalate, the ledger verifies), and what
only the PostgreSQL backend promises: the backend is chosen by one setting, migrations are safe when several
processes start at once, the ledger stays one chain when several processes append, due webhooks are claimed once,
footprints answer a spatial query. PostgreSQL tests skip without a server (fail with FOREWARN_REQUIRE_SERVICES=1)."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import shapely

from forewarn.core.model import Agreement, OperationState, Party, SeparationMinima
from forewarn.errors import InvalidInput
from forewarn.service.compose import build_service, open_repository, open_track_store
from forewarn.service.desk import DeliveryDesk
from forewarn.service.notices import Forewarn
from forewarn.service.settings import Settings, load_settings
from forewarn.store import Repository, SQLiteRepository
from forewarn.store.postgres.connection import migrations
from forewarn.store.postgres.repository import PostgresRepository
from forewarn.store.postgres.tracks import PostgresTrackStore
from tests.builders import circle, operation
from tests.conftest import T0, PostgresServer

NOW = T0 - timedelta(hours=3)
MINIMA = SeparationMinima(horizontal_m=9260, vertical_m=305, time_s=600)

DEV: dict[str, Any] = {"webhook_allow_http": True, "webhook_allow_private": True}
"""The test webhooks are plain http:// on loopback (issue 19 refuses both by default)."""


def _seed(s: Forewarn) -> Forewarn:
    s.put_party(Party(id="usa", name="Coalition"))
    s.put_party(Party(id="rus", name="Russia", webhook_url="http://127.0.0.1:9/hook"))
    s.put_party(Party(id="fra", name="France", backup_webhook_url="http://127.0.0.1:9/duty"))
    s.put_agreement(Agreement(id="mou", name="MoU", parties=["usa", "rus", "fra"], default_minima=MINIMA,
                              min_notice_s=3600, ack_deadline_s=900), NOW)
    return s


@pytest.fixture(params=["sqlite", "postgres"])
def svc(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Forewarn]:
    repo: Repository
    if request.param == "sqlite":
        repo = SQLiteRepository(tmp_path / "svc.sqlite")
    else:
        repo = request.getfixturevalue("postgres_repo")
    yield _seed(Forewarn(repo, Settings(db=tmp_path / "unused.sqlite", **DEV)))


def test_file_conflict_deliver_acknowledge_escalate_and_the_ledger_verifies(svc: Forewarn) -> None:
    desk = DeliveryDesk(svc)
    first = svc.notify(operation("fra-op", "fra", [circle(38.0, 35.0)]), NOW)
    assert first.conflicts == []
    out = svc.notify(operation("rus-op", "rus", [circle(38.02, 35.0)], cls="cruise_missile_corridor"),
                     NOW + timedelta(minutes=1))
    [conflict] = out.conflicts
    assert {conflict.a.operation_id, conflict.b.operation_id} == {"rus-op", "fra-op"}
    # both sides are told: France by a delivery naming its operation, Russia by the filing's outcome (stored)
    [to_fra] = [d for d in svc.repo.list_deliveries("fra") if d.payload["from_party"] == "rus"]
    assert to_fra.payload["affected"] and [c["b"]["operation_id"] for c in to_fra.payload["conflicts"]] == ["fra-op"]
    assert [len(n.outcome.conflicts) for n in svc.repo.list_notices("rus-op")] == [1]
    seqs = [d.seq for d in svc.repo.list_deliveries()]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    # acknowledge one, let the other run past its deadline: escalated once, over the backup channel
    [to_rus] = svc.repo.list_deliveries("rus")
    assert desk.acknowledge(to_rus.id, "rus", NOW + timedelta(minutes=2)).acked_at == NOW + timedelta(minutes=2)
    escalated = desk.escalate_overdue(NOW + timedelta(hours=1))
    assert {d.party_id for d in escalated} == {"usa", "fra"} and all(d.channel == "backup" for d in escalated)
    assert desk.escalate_overdue(NOW + timedelta(hours=2)) == []
    failed = desk.record_attempt(escalated[0], ok=False, error="HTTP 500", now=NOW + timedelta(hours=1))
    assert failed.attempts == 1 and svc.repo.get_delivery(failed.id) == failed
    report = svc.ledger.verify()
    kinds = [e.kind for e in svc.repo.iter_ledger()]
    assert report.ok and report.entries == len(kinds) and report.head_seq == len(kinds)
    assert kinds.count("notice") == 2 and kinds.count("acknowledgement") == 1
    assert kinds.count("escalation") == len(escalated) == 3
    # a restarted service over the same store rebuilds its index and still detects against the stored operations
    again = Forewarn(svc.repo, svc.settings)
    late = again.notify(operation("usa-op", "usa", [circle(38.01, 35.0)]), NOW + timedelta(minutes=3))
    assert {c.b.operation_id for c in late.conflicts} == {"fra-op", "rus-op"}


def test_a_failed_filing_leaves_no_row_and_no_ledger_entry(svc: Forewarn, monkeypatch: pytest.MonkeyPatch) -> None:
    before = ([e.seq for e in svc.repo.iter_ledger()], svc.repo.list_deliveries(), svc.repo.list_operations())

    def broken(*args: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(svc.repo, "add_deliveries", broken)
    with pytest.raises(RuntimeError):
        svc.notify(operation("x", "usa", [circle(38.0, 35.0)]), NOW)
    assert ([e.seq for e in svc.repo.iter_ledger()], svc.repo.list_deliveries(), svc.repo.list_operations()) == before
    monkeypatch.undo()
    svc.notify(operation("x", "usa", [circle(38.0, 35.0)]), NOW)
    assert svc.ledger.verify().ok


# ---------------------------------------------------------------------------------------------- the setting
def test_the_setting_chooses_the_backend(postgres_url: str, tmp_path: Path) -> None:
    sqlite = open_repository(Settings(db=tmp_path / "a.sqlite"))
    assert isinstance(sqlite, SQLiteRepository) and (tmp_path / "a.sqlite").exists()
    sqlite.close()
    pg = open_repository(Settings(db=tmp_path / "b.sqlite", database_url=postgres_url))
    assert isinstance(pg, PostgresRepository) and not (tmp_path / "b.sqlite").exists()
    assert isinstance(open_track_store(pg), PostgresTrackStore)
    pg.close()
    service = build_service(Settings(db=tmp_path / "c.sqlite", database_url=postgres_url))
    assert isinstance(service.repo, PostgresRepository)
    service.repo.close()


@pytest.mark.parametrize("bad", ["mysql://x/y", "forewarn.sqlite", "http://127.0.0.1:5432/x"])
def test_a_database_url_that_is_not_postgresql_is_refused(bad: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOREWARN_DATABASE_URL", bad)
    with pytest.raises(InvalidInput) as caught:
        load_settings()
    assert [e["field"] for e in caught.value.details["errors"]] == ["FOREWARN_DATABASE_URL"]
    with pytest.raises(ValueError, match="postgresql://"):
        PostgresRepository(bad)


# ---------------------------------------------------------------------------------------------- several processes
def test_several_processes_starting_at_once_migrate_once(postgres_server: PostgresServer) -> None:
    url = postgres_server.create()
    errors: list[BaseException] = []
    repos: list[PostgresRepository] = []
    lock = threading.Lock()

    def start() -> None:
        try:
            repo = PostgresRepository(url, max_size=2)
            with lock:
                repos.append(repo)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(repos) == 4
    shipped = [(version,) for version, _, _ in migrations()]
    assert {r.schema_version() for r in repos} == {shipped[-1][0]}
    assert repos[0].rows("SELECT version FROM schema_migrations ORDER BY version") == shipped
    for r in repos:
        r.close()


_WRITER = """
import sys
from datetime import timedelta
from forewarn.service.notices import Forewarn
from forewarn.service.settings import Settings
from forewarn.store.postgres.repository import PostgresRepository
from tests.builders import circle, operation
from tests.test_postgres_service import NOW
url, party, lon, n = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
svc = Forewarn(PostgresRepository(url, max_size=2), Settings())
for i in range(n):
    svc.notify(operation(f"{party}-{i}", party, [circle(lon, 35.0 + i * 0.5, 1000)]), NOW + timedelta(seconds=i))
"""


def test_several_processes_append_to_one_ledger_chain(postgres_repo: PostgresRepository) -> None:
    """Three processes file at once through their own pools: one gap-free chain that verifies, and delivery
    sequence numbers unique and in commit order."""
    svc = _seed(Forewarn(postgres_repo, Settings(**DEV)))
    svc.ledger.signer(NOW)  # one service key, created before the writers start
    root = Path(__file__).resolve().parents[1]
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, postgres_repo.url, party, str(lon), "8"], cwd=root,
                                env={"PYTHONPATH": f"{root / 'src'}:{root}", "PATH": "/usr/bin:/bin"},
                                stderr=subprocess.PIPE, text=True)
               for party, lon in (("usa", 10.0), ("rus", 20.0), ("fra", 30.0))]
    for w in writers:
        _, err = w.communicate(timeout=300)
        assert w.returncode == 0, err
    entries = list(postgres_repo.iter_ledger())
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert [e.kind for e in entries].count("notice") == 24
    assert svc.ledger.verify().ok
    seqs = [d.seq for d in postgres_repo.list_deliveries()]
    assert len(seqs) == 24 * 2 and len(set(seqs)) == len(seqs)


def test_due_webhooks_are_claimed_once(postgres_repo: PostgresRepository) -> None:
    svc = _seed(Forewarn(postgres_repo, Settings(**DEV)))
    for i in range(30):
        svc.notify(operation(f"op{i}", "usa", [circle(10.0 + i, 35.0, 1000)]), NOW)
    due = postgres_repo.due_webhook_deliveries(NOW, limit=1000)
    assert len(due) == 30 and {d.party_id for d in due} == {"rus"}
    taken: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        while got := postgres_repo.take_due_webhook_deliveries(NOW, timedelta(minutes=1), limit=3):
            with lock:
                taken.extend(d.id for d in got)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(taken) == sorted(d.id for d in due)  # every due delivery taken exactly once
    assert postgres_repo.due_webhook_deliveries(NOW) == []  # leased
    assert len(postgres_repo.due_webhook_deliveries(NOW + timedelta(minutes=1))) == 30  # the lease runs out
    with pytest.raises(ValueError):
        postgres_repo.take_due_webhook_deliveries(NOW, timedelta(0))


# ---------------------------------------------------------------------------------------------- PostGIS
def test_footprints_answer_a_spatial_query(postgres_repo: PostgresRepository) -> None:
    svc = _seed(Forewarn(postgres_repo, Settings(**DEV)))
    svc.notify(operation("near", "usa", [circle(38.0, 35.0, 5000, start_h=1, end_h=2)]), NOW)
    svc.notify(operation("far", "rus", [circle(40.0, 35.0, 5000, start_h=1, end_h=2)]), NOW)
    svc.notify(operation("later", "fra", [circle(38.0, 35.0, 5000, start_h=5, end_h=6)]), NOW)
    box = shapely.box(37.9, 34.9, 38.1, 35.1)
    assert [o.id for o in postgres_repo.operations_in(box, T0, T0 + timedelta(hours=3))] == ["near"]
    assert [o.id for o in postgres_repo.operations_in(box, T0, T0 + timedelta(hours=9))] == ["later", "near"]
    # the edge of a 5 km circle: a point 4 km away is inside, 6 km away is not (about 0.0449 deg of longitude/km)
    inside, outside = shapely.Point(38.0 + 4 * 0.011, 35.0).buffer(1e-4), shapely.Point(38.0 + 6 * 0.011, 35.0)
    assert [o.id for o in postgres_repo.operations_in(inside, T0, T0 + timedelta(hours=3))] == ["near"]
    assert postgres_repo.operations_in(outside.buffer(1e-4), T0, T0 + timedelta(hours=3)) == []
    svc.repo.set_operation_state("near", OperationState.CANCELLED, NOW)
    assert postgres_repo.operations_in(box, T0, T0 + timedelta(hours=3)) == []
    indexes = postgres_repo.rows("SELECT indexdef FROM pg_indexes WHERE tablename = 'operation_volumes'")
    assert any("USING gist (footprint)" in r[0] for r in indexes)
