"""The ledger at the service level: what each use case records, party signatures (accepted, kept, rejected and
recorded), party keys with history, receipts checked offline, audit queries, canonical JSON."""

from __future__ import annotations

import itertools
import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from forewarn.cli.main import app
from forewarn.core.model import Agreement, Party, PlanningDetail, ProtectedSite, SeparationMinima
from forewarn.core.policy import view_operation
from forewarn.errors import ForewarnError
from forewarn.http.submissions import address
from forewarn.ledger.canonical import canonical_json, parse_canonical, reference_canonical_json
from forewarn.ledger.chain import GENESIS, LedgerEntry, content_digest, link_hash, sealed
from forewarn.ledger.keys import PartySignature, key_id_of, raw_public, sign_request, verify_party_signature
from forewarn.ledger.receipts import check_receipt
from forewarn.service.desk import DeliveryDesk
from forewarn.service.notices import Forewarn
from forewarn.service.receipts import build_receipt
from forewarn.service.settings import Settings
from forewarn.store import SQLiteRepository
from tests.builders import circle, operation
from tests.conftest import T0

NOW = T0 - timedelta(hours=3)
DETAIL = PlanningDetail(purpose="close air support", unit="strike cell", call_signs=["DUDE01"], notes="secret")


def make_service(db: Path) -> Forewarn:
    """usa, rus, fra bound by a MoU (ack deadline 900 s); usa-fra releases purpose to fra; un bound to all;
    nobody bound to no one."""
    s = Forewarn(SQLiteRepository(db), Settings(db=db, webhook_allow_http=True, webhook_allow_private=True),
                 addresses=address)
    extras: dict[str, dict[str, Any]] = {"rus": {"webhook_url": "http://127.0.0.1:9/hook"}}
    for pid in ("usa", "rus", "fra", "un", "nobody"):
        s.put_party(Party(id=pid, name=pid.upper(), **extras.get(pid, {})))
    minima = SeparationMinima(horizontal_m=9260, vertical_m=305, time_s=600)
    s.put_agreement(Agreement(id="mou", name="MoU", parties=["usa", "rus", "fra"], default_minima=minima,
                              ack_deadline_s=900), NOW)
    s.put_agreement(Agreement(id="usa-fra", name="sharing", parties=["usa", "fra"], default_minima=minima,
                              sharing="planning_detail", released_fields={"purpose": ["fra"]}), NOW)
    s.put_agreement(Agreement(id="hum", name="humanitarian", parties=["un", "usa", "rus", "fra"],
                              default_minima=minima, ack_deadline_s=3600), NOW)
    return s


def register(s: Forewarn, party: str, at: Any = NOW) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    s.ledger.register_key(party, raw_public(key.public_key()), at)
    return key


def signed_notice(key: Ed25519PrivateKey, party: str, op_id: str, lon: float = 38.0, **kw: Any) -> tuple[Any, Any]:
    """An operation and its party signature, signed over the JSON body a client would POST."""
    op = operation(op_id, party, [circle(lon, 35.0)], detail=DETAIL)
    body = {"id": op.id, "activity_class": op.activity_class,
            "volumes": [v.model_dump(mode="json") for v in op.volumes], "detail": DETAIL.model_dump(mode="json")}
    return op, sign_request(key, kw.pop("as_party", party), "POST", "/v1/operations", body, **kw)


def counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("operations", "notices", "deliveries", "ledger_entries", "party_keys", "idempotency")}


def kinds(s: Forewarn) -> list[str]:
    return [e.kind for e in s.repo.iter_ledger()]


# ---------------------------------------------------------------------------------------------- what is recorded
def test_every_use_case_is_recorded_in_order_and_the_chain_verifies(db_path: Path) -> None:
    s = make_service(db_path)
    desk = DeliveryDesk(s)
    start = len(kinds(s))
    assert kinds(s) == ["agreement"] * 3
    s.plan(operation("p1", "usa", [circle(38.0, 35.0)]), NOW)
    s.notify(operation("p1", "usa", [circle(38.0, 35.0)]), NOW)
    s.amend("p1", 2, "usa", NOW + timedelta(minutes=1), volumes=[circle(38.1, 35.0)])
    s.activate("p1", "usa", NOW + timedelta(minutes=2))
    s.complete("p1", "usa", NOW + timedelta(minutes=3))
    s.notify(operation("p2", "rus", [circle(40.0, 35.0)]), NOW + timedelta(minutes=4))
    s.cancel("p2", "rus", NOW + timedelta(minutes=5))
    s.register_site(ProtectedSite(id="h1", name="Hospital", registered_by="un", point=(38.0, 35.0)),
                    NOW + timedelta(minutes=6))
    fra = [d for d in s.repo.list_deliveries("fra") if d.payload.get("type") == "notice"]
    desk.acknowledge(fra[0].id, "fra", NOW + timedelta(minutes=7))
    desk.acknowledge(fra[0].id, "fra", NOW + timedelta(minutes=8))  # a repeat changes nothing
    rus_first = s.repo.list_deliveries("rus")[0]
    desk.record_attempt(rus_first, False, "HTTP 500", NOW + timedelta(minutes=9))
    desk.record_attempt(rus_first, True, None, NOW + timedelta(minutes=10))
    desk.note_streamed(fra[1], NOW + timedelta(minutes=11))
    assert desk.flush_streamed() == 1
    escalated = desk.escalate_overdue(NOW + timedelta(hours=2))
    got = kinds(s)[start:]
    notices = ["notice", "amendment", "activation", "completion", "notice", "cancellation"]
    assert [k for k in got if k in (*notices, "site_registration")] == [*notices, "site_registration"]
    assert got.count("acknowledgement") == 1 and got.count("escalation") == len(escalated) > 0
    # rus's first attempt failed (sent, not delivered); fra's stream send was sent and delivered at once: one entry;
    # fra[0], acknowledged with no recorded send, is recorded delivered (via its inbox) just before the acknowledgement
    assert got.count("delivery_attempt_failed") == 1 and got.count("delivery_sent") == 1
    assert got.count("delivery_delivered") == 3
    assert got.index("acknowledgement") == got.index("delivery_delivered") + 1
    streamed = s.repo.find_ledger(kinds=["delivery_delivered"], subject=fra[1].id)
    assert [e.body["first_sent_at"] == e.body["delivered_at"] for e in streamed] == [True]
    # slow obvious cross-check: one delivery_created entry per stored delivery, carrying its exact payload
    created = {e.subject: e for e in s.repo.find_ledger(kinds=["delivery_created"])}
    stored = s.repo.list_deliveries()
    assert set(created) == {d.id for d in stored}
    for d in stored:
        assert created[d.id].party_id == d.party_id and created[d.id].body["payload"] == d.payload
    # site registrations reach every party bound to the registrant
    assert {d.party_id for d in stored if d.reason == "site"} == {"usa", "rus", "fra"}
    report = s.ledger.verify()
    assert report.ok and report.entries == len(kinds(s)) and report.head_seq == report.entries


def test_entries_commit_or_roll_back_with_the_change(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = make_service(db_path)
    before = counts(db_path)

    def broken(*args: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(s.repo, "add_deliveries", broken)
    with pytest.raises(RuntimeError):
        s.notify(operation("x", "usa", [circle(38.0, 35.0)]), NOW)
    assert counts(db_path) == before  # the notice's ledger entry went with the failed transaction
    monkeypatch.undo()
    s.notify(operation("x", "usa", [circle(38.0, 35.0)]), NOW)
    assert s.ledger.verify().ok


def test_chain_links_each_entry_to_the_previous(db_path: Path) -> None:
    s = make_service(db_path)
    s.notify(operation("x", "usa", [circle(38.0, 35.0)]), NOW)
    entries = list(s.repo.iter_ledger())
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert entries[0].prev_hash == GENESIS
    for a, b in itertools.pairwise(entries):
        assert b.prev_hash == a.entry_hash
        assert b.entry_hash == link_hash(b.seq, b.prev_hash, b.recomputed_digest())


def test_the_contract_others_call_joins_their_transaction(db_path: Path) -> None:
    s = make_service(db_path)
    before = counts(db_path)["ledger_entries"]
    with pytest.raises(RuntimeError), s.repo.transaction():
        s.ledger.append("alert", "track-1", {"at": NOW, "distance_m": 812.5}, NOW, party_id="usa")
        raise RuntimeError("the caller's change failed")
    assert counts(db_path)["ledger_entries"] == before
    with s.repo.transaction():
        entry = s.ledger.append("alert", "track-1", {"at": NOW, "distance_m": 812.5}, NOW, party_id="usa")
    assert entry.body == {"at": "2015-11-16T21:00:00Z", "distance_m": 812.5} and entry.kind == "alert"
    assert s.ledger.verify().ok
    with pytest.raises(ValueError):
        s.ledger.append("Not A Kind", "x", {}, NOW)


# ---------------------------------------------------------------------------------------------- party signatures
def test_signed_notice_and_acknowledgement_are_kept_and_verify(db_path: Path) -> None:
    s = make_service(db_path)
    usa, fra = register(s, "usa"), register(s, "fra")
    op, sig = signed_notice(usa, "usa", "u1")
    s.notify(op, NOW, party_signature=sig)
    [entry] = s.repo.find_ledger(kinds=["notice"], subject="u1")
    kept = entry.party_signature
    assert kept is not None and kept.public_key == raw_public(usa.public_key()) and kept.key_id == sig.key_id
    assert "detail" not in kept.model_dump_json() and "close air support" not in kept.model_dump_json()
    assert verify_party_signature(kept, kept.public_key)  # checkable from the entry alone
    [delivery] = [d for d in s.repo.list_deliveries("fra")]
    ack = sign_request(fra, "fra", "POST", f"/v1/deliveries/{delivery.id}/ack", None)
    DeliveryDesk(s).acknowledge(delivery.id, "fra", NOW + timedelta(minutes=1), party_signature=ack)
    [acked] = s.repo.find_ledger(kinds=["acknowledgement"], subject=delivery.id)
    assert acked.party_signature is not None and acked.party_signature.nonce == ack.nonce
    assert s.ledger.verify().ok


def _bad(s: Forewarn, case: str) -> tuple[Any, Any, str]:
    """(operation, signature, the party submitting) of one kind of bad signed notice."""
    usa = register(s, "usa")
    rus = register(s, "rus")
    if case == "forged":  # signed by a key that is not the registered one, under its key id
        op, sig = signed_notice(Ed25519PrivateKey.generate(), "usa", "bad", key_id=key_id_of(usa.public_key()))
    elif case == "altered":  # a valid signature, then the body changed
        op, sig = signed_notice(usa, "usa", "bad")
        op = op.model_copy(update={"volumes": [circle(39.0, 35.0)]})
        body = dict(sig.body or {}) | {"volumes": [circle(39.0, 35.0).model_dump(mode="json")]}
        sig = sig.model_copy(update={"body": body})
    elif case == "other_request":  # signed for another operation
        _, sig = signed_notice(usa, "usa", "other")
        op = operation("bad", "usa", [circle(38.0, 35.0)], detail=DETAIL)
    elif case == "revoked":
        op, sig = signed_notice(usa, "usa", "bad")
        s.ledger.revoke_key("usa", key_id_of(usa.public_key()), NOW - timedelta(seconds=1))
    elif case == "other_partys_key":  # usa submits with rus's key: on another party's behalf
        op, sig = signed_notice(rus, "usa", "bad", key_id=key_id_of(rus.public_key()))
        sig = sig.model_copy(update={"party_id": "usa"})
    elif case == "on_behalf":  # usa submits a request rus signed
        op, sig = signed_notice(rus, "rus", "bad")
        op = op.model_copy(update={"party_id": "usa"})
    elif case == "replay":
        first, sig = signed_notice(usa, "usa", "first")
        s.notify(first, NOW, party_signature=sig)
        op = first
    else:  # unknown key
        op, sig = signed_notice(Ed25519PrivateKey.generate(), "usa", "bad")
    return op, sig, "usa"


@pytest.mark.parametrize(("case", "code"), [
    ("forged", "unauthenticated"), ("altered", "invalid_input"), ("other_request", "invalid_input"),
    ("revoked", "unauthenticated"), ("other_partys_key", "forbidden"), ("on_behalf", "forbidden"),
    ("replay", "invalid_input"), ("unknown_key", "unauthenticated"),
])
def test_bad_signatures_are_rejected_recorded_and_change_nothing_else(db_path: Path, case: str, code: str) -> None:
    s = make_service(db_path)
    op, sig, _ = _bad(s, case)
    before = counts(db_path)
    live_before = dict(s.airspace.operations)
    with pytest.raises(ForewarnError) as info:
        s.notify(op, NOW + timedelta(minutes=1), party_signature=sig)
    assert info.value.code == code, info.value.message
    after = counts(db_path)
    assert after == before | {"ledger_entries": before["ledger_entries"] + 1}
    assert s.airspace.operations == live_before
    last = list(s.repo.iter_ledger())[-1]
    assert last.kind == "rejection" and last.party_id == "usa" and last.body["code"] == code
    assert last.body["nonce"] == sig.nonce and last.body["key_id"] == sig.key_id
    assert s.ledger.verify().ok


def test_a_signed_acknowledgement_for_another_delivery_is_refused(db_path: Path) -> None:
    s = make_service(db_path)
    fra = register(s, "fra")
    s.notify(operation("a", "usa", [circle(38.0, 35.0)]), NOW)
    s.notify(operation("b", "usa", [circle(45.0, 35.0)]), NOW)
    d1, d2 = s.repo.list_deliveries("fra")
    sig = sign_request(fra, "fra", "POST", f"/v1/deliveries/{d1.id}/ack", None)
    with pytest.raises(ForewarnError) as info:
        DeliveryDesk(s).acknowledge(d2.id, "fra", NOW, party_signature=sig)
    assert info.value.code == "invalid_input" and "not POST" in info.value.message
    assert s.repo.get_delivery(d2.id).acked_at is None  # type: ignore[union-attr]
    assert kinds(s)[-1] == "rejection"


def test_key_rotation_and_revocation_keep_history(db_path: Path) -> None:
    s = make_service(db_path)
    old = register(s, "usa")
    op, sig = signed_notice(old, "usa", "a")
    s.notify(op, NOW, party_signature=sig)
    new = Ed25519PrivateKey.generate()
    rotated = s.ledger.rotate_key("usa", key_id_of(old.public_key()), raw_public(new.public_key()),
                                  NOW + timedelta(minutes=5))
    history = s.repo.list_party_keys("usa")
    assert [(k.key_id, k.revoked_at, k.replaces) for k in history] == [
        (key_id_of(old.public_key()), NOW + timedelta(minutes=5), None),
        (rotated.key_id, None, key_id_of(old.public_key())),
    ]
    later = NOW + timedelta(minutes=6)
    op_b, with_old = signed_notice(old, "usa", "b", lon=41.0)
    with pytest.raises(ForewarnError, match="revoked"):
        s.notify(op_b, later, party_signature=with_old)
    op_b, with_new = signed_notice(new, "usa", "b", lon=41.0)
    s.notify(op_b, later, party_signature=with_new)
    with pytest.raises(ForewarnError, match="registered once"):
        s.ledger.register_key("usa", raw_public(old.public_key()), later)
    with pytest.raises(ForewarnError, match="no key"):
        s.ledger.revoke_key("rus", rotated.key_id, later)  # not rus's key
    assert [k for k in kinds(s) if k.startswith("key_")] == ["key_registered", "key_revoked", "key_registered"]
    assert s.ledger.verify().ok  # the entry signed with the old key still verifies


# ---------------------------------------------------------------------------------------------- receipts
def _delivered_and_acked(db: Path) -> tuple[Forewarn, str]:
    s = make_service(db)
    usa, fra = register(s, "usa"), register(s, "fra")
    op, sig = signed_notice(usa, "usa", "u1")
    s.notify(op, NOW, party_signature=sig)
    s.notify(operation("noise", "rus", [circle(44.0, 35.0)]), NOW + timedelta(minutes=1))  # entries in between
    [d] = [x for x in s.repo.list_deliveries("fra") if x.payload["operation"]["id"] == "u1"]
    desk = DeliveryDesk(s)
    desk.note_streamed(d, NOW + timedelta(minutes=2))
    desk.flush_streamed()
    s.notify(operation("noise2", "rus", [circle(45.0, 35.0)]), NOW + timedelta(minutes=3))
    ack = sign_request(fra, "fra", "POST", f"/v1/deliveries/{d.id}/ack", {})
    desk.acknowledge(d.id, "fra", NOW + timedelta(minutes=4), party_signature=ack)
    return s, d.id


def test_receipt_proves_delivery_and_acknowledgement_offline(db_path: Path) -> None:
    s, did = _delivered_and_acked(db_path)
    receipt = json.loads(json.dumps(build_receipt(s.ledger, did)))  # as it travels: plain JSON
    [service_key] = s.ledger.service_keys().values()
    result = check_receipt(receipt, service_key)
    assert result.valid, result.problems
    assert result.delivered_at and result.acknowledged_at
    assert datetime.fromisoformat(result.delivered_at) == NOW + timedelta(minutes=2)
    assert datetime.fromisoformat(result.acknowledged_at) == NOW + timedelta(minutes=4)
    text = " ".join(result.proves)
    assert "signed by party usa" in text and "signed by fra" in text and "unbroken chain" in text
    # minimal disclosure: nothing of the entries in between, and no planning detail withheld from fra
    full = {e["seq"] for e in receipt["entries"]}
    assert receipt["links"] and all(link["seq"] not in full for link in receipt["links"])
    assert "noise" not in json.dumps(receipt) and "strike cell" not in json.dumps(receipt)
    assert "close air support" in json.dumps(receipt)  # released to fra: what fra was shown
    # a wrong pinned key proves nothing
    assert not check_receipt(receipt, Ed25519PrivateKey.generate().public_key()).valid


def _mutations(receipt: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    entries = receipt["entries"]
    delivered = next(i for i, e in enumerate(entries) if e["kind"] == "delivery_delivered")
    acked = next(i for i, e in enumerate(entries) if e["kind"] == "acknowledgement")

    def variant(name: str, change: Any) -> None:
        data = json.loads(json.dumps(receipt))
        change(data)
        out.append((name, data))

    variant("delivered time changed", lambda d: d["entries"][delivered]["body"].update(delivered_at="2015-11-16T00"))
    variant("ack time changed", lambda d: d["entries"][acked].update(at="2015-11-16T23:00:00.000000+00:00"))
    variant("a link dropped", lambda d: d["links"].pop(len(d["links"]) // 2))
    variant("a link altered", lambda d: d["links"][0].update(digest="0" * 64))
    variant("an entry dropped, its link missing", lambda d: d["entries"].pop(delivered))
    variant("recipient changed", lambda d: d["entries"][1].update(party_id="rus"))
    variant("signature swapped", lambda d: d["entries"][acked].update(
        service_signature=d["entries"][delivered]["service_signature"]))
    variant("not a receipt", lambda d: d.update(format="something else"))
    return out


def test_any_change_to_a_receipt_is_detected(db_path: Path) -> None:
    s, did = _delivered_and_acked(db_path)
    receipt = build_receipt(s.ledger, did)
    for name, data in _mutations(json.loads(json.dumps(receipt))):
        result = check_receipt(data)
        assert not result.valid and result.problems, name


def test_a_receipt_before_acknowledgement_says_so(db_path: Path) -> None:
    s = make_service(db_path)
    s.notify(operation("u1", "usa", [circle(38.0, 35.0)]), NOW)
    [d] = s.repo.list_deliveries("fra")
    result = check_receipt(build_receipt(s.ledger, d.id))
    assert result.valid and result.delivered_at is None and result.acknowledged_at is None
    assert any("NOT proven delivered" in p for p in result.proves)
    assert any("NOT proven acknowledged" in p for p in result.proves)
    with pytest.raises(ForewarnError):
        build_receipt(s.ledger, "no-such-delivery")


def test_receipt_of_an_escalated_delivery_acknowledged_through_the_escalation(db_path: Path) -> None:
    s = make_service(db_path)
    s.notify(operation("u1", "usa", [circle(38.0, 35.0)]), NOW)
    [d] = s.repo.list_deliveries("fra")
    desk = DeliveryDesk(s)
    [backup] = [b for b in desk.escalate_overdue(NOW + timedelta(hours=1)) if b.party_id == "fra"]
    desk.acknowledge(backup.id, "fra", NOW + timedelta(hours=1, minutes=1))
    result = check_receipt(build_receipt(s.ledger, d.id))
    assert result.valid and result.acknowledged_at is not None
    assert any("escalated" in p for p in result.proves) and any("through its escalation" in p for p in result.proves)


def test_cli_receipt_and_check_receipt(db_path: Path, tmp_path: Path) -> None:
    _, did = _delivered_and_acked(db_path)
    runner = CliRunner()
    out = tmp_path / "receipt.json"
    assert runner.invoke(app, ["ledger", "receipt", did, "--db", str(db_path), "--out", str(out)]).exit_code == 0
    keys = json.loads(runner.invoke(app, ["ledger", "service-key", "--db", str(db_path)]).stdout)
    [pinned] = keys.values()
    ok = runner.invoke(app, ["ledger", "check-receipt", str(out), "--service-key", pinned])
    assert ok.exit_code == 0, ok.output
    assert "receipt authentic" in ok.output and "acknowledged it" in ok.output
    data = json.loads(out.read_text())
    data["entries"][-1]["body"]["acked_at"] = "2015-11-18T00:00:00+00:00"
    out.write_text(json.dumps(data))
    bad = runner.invoke(app, ["ledger", "check-receipt", str(out)])
    assert bad.exit_code == 2 and "NOT valid" in bad.output and "changed" in bad.output


# ---------------------------------------------------------------------------------------------- audit
def test_audit_what_a_party_was_shown_matches_the_policy(db_path: Path) -> None:
    s = make_service(db_path)
    s.notify(operation("u1", "usa", [circle(38.0, 35.0)], detail=DETAIL), NOW)
    s.amend("u1", 1, "usa", NOW + timedelta(minutes=1), volumes=[circle(38.2, 35.0)])
    [first, _] = s.repo.list_deliveries("fra")
    DeliveryDesk(s).acknowledge(first.id, "fra", NOW + timedelta(minutes=2))
    op = s.repo.get_operation("u1")
    assert op is not None
    for party in ("fra", "rus"):
        rows = s.ledger.shown(party, "u1")
        assert [r["notice_kind"] for r in rows] == ["notify", "amend"]
        # cross-check with the policy gate itself on the current version
        assert rows[-1]["shown"] == view_operation(party, op, s.airspace.book)
    fra = s.ledger.shown("fra", "u1")
    assert fra[0]["shown"]["detail"] == {"purpose": "close air support"} and fra[0]["acknowledged_at"] is not None
    assert fra[1]["acknowledged_at"] is None
    assert "detail" not in s.ledger.shown("rus", "u1")[0]["shown"]
    assert s.ledger.shown("nobody", "u1") == []  # bound by no agreement: shown nothing
    s.record_disclosure("rus", "u1", {"id": "u1"}, NOW + timedelta(minutes=3), "GET /v1/operations/u1")
    assert s.ledger.shown("rus", "u1")[-1] | {"seq": 0} == {"seq": 0, "kind": "disclosure", "recorded_at": (
        NOW + timedelta(minutes=3)).isoformat(timespec="microseconds"), "via": "GET /v1/operations/u1",
        "shown": {"id": "u1"}}


def test_audit_which_parties_received_and_acknowledged_a_site(db_path: Path) -> None:
    s = make_service(db_path)
    site = ProtectedSite(id="h1", name="Hospital", registered_by="un", point=(38.0, 35.0))
    s.register_site(site, NOW)
    desk = DeliveryDesk(s)
    by_party = {d.party_id: d for d in s.repo.list_deliveries() if d.reason == "site"}
    desk.note_streamed(by_party["usa"], NOW + timedelta(minutes=1))
    desk.flush_streamed()
    desk.acknowledge(by_party["usa"].id, "usa", NOW + timedelta(minutes=2))
    desk.acknowledge(by_party["fra"].id, "fra", NOW + timedelta(minutes=3))
    audit = s.ledger.site_receipts("h1")
    assert [r["party_id"] for r in audit["registrations"]] == ["un"]
    got = {r["party_id"]: (r["delivered_at"] is not None, r["acknowledged_at"]) for r in audit["recipients"]}
    assert got == {"usa": (True, (NOW + timedelta(minutes=2)).isoformat(timespec="microseconds")),
                   # acknowledged with no recorded send: recorded delivered (via its inbox) first
                   "fra": (True, (NOW + timedelta(minutes=3)).isoformat(timespec="microseconds")),
                   "rus": (False, None)}
    assert check_receipt(build_receipt(s.ledger, by_party["usa"].id)).valid


# ---------------------------------------------------------------------------------------------- canonical JSON
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
@settings(max_examples=150, deadline=None)
def test_canonical_json_without_floats_is_sorted_compact_utf8(value: Any) -> None:
    """Without floats and with BMP-only keys, JCS is the sorted, compact, UTF-8 dump (a slow obvious path)."""
    def bmp_keys(v: Any) -> bool:
        if isinstance(v, dict):
            return all(all(ord(c) < 0xD800 for c in k) and bmp_keys(x) for k, x in v.items())
        return all(bmp_keys(x) for x in v) if isinstance(v, list) else True

    if bmp_keys(value):
        expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        assert canonical_json(value) == expected
    assert json.loads(canonical_json(value)) == value


finite_floats = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [0.0, -0.0, 5.0, 1e16, 1e21, 1e-7, 1e-5, 1.5e-7, 0.1, 123456789.125, 2.0**53, 1e300, 5e-324])
any_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | finite_floats | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=25,
)


@given(any_json)
@settings(max_examples=300, deadline=None)
def test_fast_canonical_json_equals_the_rfc8785_package(value: Any) -> None:
    """The fast path (C JSON encoder after rewriting floats) against the reference implementation."""
    assert canonical_json(value) == reference_canonical_json(value)


hashes = st.text("0123456789abcdef", min_size=64, max_size=64)
texts = st.text(max_size=12)


@given(st.dictionaries(st.text(max_size=6), any_json, max_size=5), st.from_regex(r"[a-z][a-z0-9_]{0,10}",
       fullmatch=True), texts, st.none() | texts, st.integers(1, 2**53 - 1), hashes | texts, st.booleans())
@settings(max_examples=150, deadline=None)
def test_entry_hashes_assembled_from_parts_equal_the_reference_over_the_whole(
        body: dict[str, Any], kind: str, subject: str, party_id: str | None, seq: int, prev: str,
        signed: bool) -> None:
    """The content digest is assembled around the body's canonical bytes, and the link hash written out
    directly for hex hashes: both equal SHA-256 of the rfc8785 package's form of the whole object (the slow
    obvious path), and the body text kept for the store is the body's canonical JSON."""
    import hashlib

    sig = sign_request(Ed25519PrivateKey.generate(), "usa", "POST", "/v1/x", {"a": 1}) if signed else None
    entry, body_json = sealed(None, seq, prev, kind, subject, party_id, NOW, body, sig)
    whole = {"kind": kind, "subject": subject, "party_id": party_id, "at": entry.at, "body": body,
             "party_signature": sig.model_dump(mode="json") if sig else None}
    assert entry.digest == hashlib.sha256(reference_canonical_json(whole)).hexdigest()
    assert entry.digest == content_digest(kind, subject, party_id, entry.at, parse_canonical(body_json), sig)
    assert body_json.encode() == reference_canonical_json(body)
    assert entry.entry_hash == hashlib.sha256(
        reference_canonical_json({"seq": seq, "prev": prev, "digest": entry.digest})).hexdigest()
    assert link_hash(seq, prev, entry.digest) == entry.entry_hash
    assert link_hash(seq, prev + "\n", entry.digest) == hashlib.sha256(  # not taken for hex: fullmatch
        reference_canonical_json({"seq": seq, "prev": prev + "\n", "digest": entry.digest})).hexdigest()


def test_canonical_json_numbers_and_key_order() -> None:
    assert canonical_json({"b": 1.0, "a": [1e21, 1e-7, 0.1, 1e16], "é": None, "z": -0.0}) == (
        '{"a":[1e+21,1e-7,0.1,10000000000000000],"b":1,"z":0,"é":null}'.encode())
    assert canonical_json({"\U0001f600": 1, "\ufb01": 2}) == reference_canonical_json({"\U0001f600": 1, "\ufb01": 2})
    assert canonical_json({"\U0001f600": 1, "\ufb01": 2}).startswith('{"\U0001f600"'.encode())  # UTF-16 order
    with pytest.raises(ForewarnError):
        canonical_json({"x": float("nan")})


def test_party_signature_is_over_the_canonical_form_not_the_formatting() -> None:
    key = Ed25519PrivateKey.generate()
    sig = sign_request(key, "usa", "post", "/v1/operations", {"b": 1, "a": [1.0, "x"]})
    same = PartySignature.model_validate(sig.model_dump() | {"public_key": None})
    assert sig.method == "POST" and verify_party_signature(same, raw_public(key.public_key()))
    assert not verify_party_signature(same.model_copy(update={"path": "/v1/check"}), raw_public(key.public_key()))


def test_ledger_entry_round_trips_through_json(db_path: Path) -> None:
    s = make_service(db_path)
    entry = next(iter(s.repo.iter_ledger()))
    again = LedgerEntry.model_validate_json(entry.model_dump_json())
    assert again == entry and again.recomputed_digest() == entry.digest


def test_cli_audit_and_keys(db_path: Path, tmp_path: Path) -> None:
    s = make_service(db_path)
    s.notify(operation("u1", "usa", [circle(38.0, 35.0)], detail=DETAIL), NOW)
    s.register_site(ProtectedSite(id="h1", name="Hospital", registered_by="un", point=(38.0, 35.0)), NOW)
    runner = CliRunner()
    db = ["--db", str(db_path)]
    shown = runner.invoke(app, ["ledger", "audit", "shown", "--party", "fra", "--operation", "u1", *db])
    assert shown.exit_code == 0 and "planning detail purpose" in shown.output
    rus = runner.invoke(app, ["ledger", "audit", "shown", "--party", "rus", "--operation", "u1", "--json", *db])
    assert "detail" not in json.loads(rus.stdout)[0]["shown"]
    site = json.loads(runner.invoke(app, ["ledger", "audit", "site", "h1", "--json", *db]).stdout)
    assert sorted(r["party_id"] for r in site["recipients"]) == ["fra", "rus", "usa"]
    key = Ed25519PrivateKey.generate()
    pub = tmp_path / "usa.pub"
    pub.write_text(raw_public(key.public_key()))
    added = runner.invoke(app, ["ledger", "key", "add", "usa", str(pub), *db])
    assert added.exit_code == 0 and json.loads(added.stdout)["key_id"] == key_id_of(key.public_key())
    assert runner.invoke(app, ["ledger", "key", "add", "usa", str(pub), *db]).exit_code == 2  # registered once
    assert runner.invoke(app, ["ledger", "key", "revoke", "usa", key_id_of(key.public_key()), *db]).exit_code == 0
    [listed] = json.loads(runner.invoke(app, ["ledger", "key", "list", "usa", *db]).stdout)
    assert listed["revoked_at"] is not None
    assert runner.invoke(app, ["ledger", "verify", *db]).exit_code == 0
