"""The ledger over HTTP: party keys (register, rotate, revoke; who may), signed submissions through the
``signed_request`` dependency, audit queries, receipts, the chain head and verification."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from forewarn.ledger.canonical import b64url, canonical_json
from forewarn.ledger.keys import body_digest, key_id_of, load_public_key, raw_public, signing_form
from forewarn.ledger.receipts import check_receipt
from tests.api_support import World, make_world, volume


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path)
    with w.client:
        yield w


def signed_app(world: World) -> TestClient:
    """The real application: its filing, amendment, transition, site and acknowledgement routes take the party
    signature (``sig: SignedRequest``) and pass it to the use case."""
    return world.client


def signed_headers(key: Ed25519PrivateKey, party: str, path: str, body: dict[str, Any] | None,
                   nonce: str = "nonce-0001", key_id: str | None = None) -> dict[str, str]:
    """What a party's client sends: the three headers over the signing form (RFC 8785 canonical JSON)."""
    kid = key_id or key_id_of(key.public_key())
    form = signing_form(party, kid, nonce, "POST", path, body_digest(body))
    signature = b64url(key.sign(canonical_json(form)))
    return {"Forewarn-Key-Id": kid, "Forewarn-Nonce": nonce, "Forewarn-Signature": signature}


def add_key(world: World, party: str) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    r = world.client.post(f"/v1/parties/{party}/keys", headers=world.auth(party),
                          json={"public_key": raw_public(key.public_key())})
    assert r.status_code == 201, r.text
    return key


def error(response: Any) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def rejections(world: World) -> list[dict[str, Any]]:
    return [e.body for e in world.service.repo.find_ledger(kinds=["rejection"])]


# ---------------------------------------------------------------------------------------------- keys
def test_keys_register_rotate_revoke_and_who_may(world: World) -> None:
    c = world.client
    key = Ed25519PrivateKey.generate()
    pem = key.public_key().public_bytes(*_pem()).decode()
    r = c.post("/v1/parties/usa/keys", headers=world.auth("usa"), json={"public_key": pem})
    assert r.status_code == 201 and r.json()["key_id"] == key_id_of(key.public_key())
    assert error(c.post("/v1/parties/usa/keys", headers=world.auth("rus"),
                        json={"public_key": raw_public(Ed25519PrivateKey.generate().public_key())})) == (
        403, "forbidden")
    assert c.post("/v1/parties/fra/keys", headers=world.auth("admin"),
                  json={"public_key": raw_public(Ed25519PrivateKey.generate().public_key())}).status_code == 201
    assert error(c.post("/v1/parties/usa/keys", headers=world.auth("usa"), json={"public_key": "x" * 50})) == (
        422, "invalid_input")
    new = Ed25519PrivateKey.generate()
    world.clock.now += timedelta(minutes=1)
    kid = key_id_of(key.public_key())
    rotated = c.post(f"/v1/parties/usa/keys/{kid}/rotate", headers=world.auth("usa"),
                     json={"public_key": raw_public(new.public_key())})
    assert rotated.status_code == 201 and rotated.json()["replaces"] == kid
    history = c.get("/v1/parties/usa/keys", headers=world.auth("rus")).json()
    assert [(k["key_id"], k["revoked_at"] is not None) for k in history] == [(kid, True), (rotated.json()["key_id"],
                                                                                        False)]
    assert error(c.post(f"/v1/parties/usa/keys/{kid}/revoke", headers=world.auth("usa"))) == (422, "invalid_input")
    assert error(c.post(f"/v1/parties/usa/keys/{rotated.json()['key_id']}/revoke", headers=world.auth("rus"))) == (
        403, "forbidden")
    revoked = c.post(f"/v1/parties/usa/keys/{rotated.json()['key_id']}/revoke", headers=world.auth("usa"))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    kinds = [e.kind for e in world.service.repo.iter_ledger() if e.kind.startswith("key_")]
    assert kinds == ["key_registered", "key_registered", "key_revoked", "key_registered", "key_revoked"]


def _pem() -> tuple[Any, Any]:
    return serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo


# ---------------------------------------------------------------------------------------------- signed submissions
NOTICE = {"id": "usa-1", "activity_class": "transport", "volumes": [volume(38, 35)]}


def test_signed_notice_and_acknowledgement_over_http(world: World) -> None:
    app = signed_app(world)
    usa, fra = add_key(world, "usa"), add_key(world, "fra")
    h = world.auth("usa") | signed_headers(usa, "usa", "/v1/operations", NOTICE)
    h["Content-Type"] = "application/json"
    r = app.post("/v1/operations", headers=h, content=json.dumps(NOTICE, indent=3))  # any formatting
    assert r.status_code == 201, r.text
    [entry] = world.service.repo.find_ledger(kinds=["notice"], subject="usa-1")
    assert entry.party_signature is not None and entry.party_signature.public_key == raw_public(usa.public_key())
    [delivery] = world.client.get("/v1/inbox", headers=world.auth("fra")).json()
    path = f"/v1/deliveries/{delivery['id']}/ack"
    acked = app.post(path, headers=world.auth("fra") | signed_headers(fra, "fra", path, None))
    assert acked.status_code == 200 and acked.json()["acked_at"] is not None
    [ack] = world.service.repo.find_ledger(kinds=["acknowledgement"])
    assert ack.party_signature is not None and ack.party_id == "fra"
    assert world.service.ledger.verify().ok


def test_bad_signed_submissions_are_refused_recorded_and_store_nothing(world: World) -> None:
    app = signed_app(world)
    usa, rus = add_key(world, "usa"), add_key(world, "rus")
    auth = world.auth("usa")

    def post(headers: dict[str, str], body: dict[str, Any] = NOTICE) -> tuple[int, str]:
        return error(app.post("/v1/operations", headers=auth | headers, json=body))

    good = signed_headers(usa, "usa", "/v1/operations", NOTICE)
    forged = signed_headers(Ed25519PrivateKey.generate(), "usa", "/v1/operations", NOTICE,
                            key_id=key_id_of(usa.public_key()))
    assert post(forged) == (401, "unauthenticated")
    altered = NOTICE | {"activity_class": "strike_area"}
    assert post(good, altered) == (401, "unauthenticated")  # the digest of what arrived is not what was signed
    assert post({k: v for k, v in good.items() if k != "Forewarn-Nonce"}) == (422, "invalid_input")
    on_behalf = signed_headers(rus, "usa", "/v1/operations", NOTICE)  # usa sends with rus's key
    assert post(on_behalf) == (403, "forbidden")
    assert world.client.get("/v1/operations", headers=auth).json() == []  # nothing was stored ...
    codes = [b["code"] for b in rejections(world)]
    assert codes == ["unauthenticated", "unauthenticated", "forbidden"]  # ... but every verified refusal recorded
    assert app.post("/v1/operations", headers=auth | good, json=NOTICE).status_code == 201
    again = NOTICE | {"id": "usa-2"}
    assert post(good) == (422, "invalid_input") and "replay" in rejections(world)[-1]["message"]
    world.clock.now += timedelta(minutes=1)
    assert world.client.post(f"/v1/parties/usa/keys/{key_id_of(usa.public_key())}/revoke",
                             headers=auth).status_code == 200
    assert post(signed_headers(usa, "usa", "/v1/operations", again, nonce="nonce-0002"), again) == (
        401, "unauthenticated")
    assert "revoked" in rejections(world)[-1]["message"]
    assert [o["id"] for o in world.client.get("/v1/operations", headers=auth).json()] == ["usa-1"]


# ---------------------------------------------------------------------------------------------- audit, receipts
def _filed_and_acked(world: World) -> str:
    c = world.client
    body = NOTICE | {"detail": {"purpose": "resupply", "unit": "airlift wing"}}
    assert c.post("/v1/operations", headers=world.auth("usa"), json=body).status_code == 201
    [d] = c.get("/v1/inbox", headers=world.auth("fra")).json()
    world.clock.now += timedelta(minutes=2)
    assert c.post(f"/v1/deliveries/{d['id']}/ack", headers=world.auth("fra")).status_code == 200
    return str(d["id"])


def test_audit_shown_over_http_and_who_may_ask(world: World) -> None:
    _filed_and_acked(world)
    c = world.client
    q = {"party": "fra", "operation": "usa-1"}
    [row] = c.get("/v1/audit/shown", headers=world.auth("fra"), params=q).json()
    assert row["shown"]["detail"] == {"purpose": "resupply"} and row["acknowledged_at"] is not None
    assert c.get("/v1/audit/shown", headers=world.auth("usa"), params=q).json() == [row]  # the owner may ask
    assert c.get("/v1/audit/shown", headers=world.auth("admin"), params=q).json() == [row]
    assert error(c.get("/v1/audit/shown", headers=world.auth("rus"), params=q)) == (403, "forbidden")
    mine = {"party": "rus", "operation": "usa-1"}
    [rus_row] = c.get("/v1/audit/shown", headers=world.auth("rus"), params=mine).json()
    assert "detail" not in rus_row["shown"] and rus_row["acknowledged_at"] is None


def test_site_audit_over_http(world: World) -> None:
    c = world.client
    site = {"id": "h1", "name": "Hospital", "category": "hospital", "point": [38.0, 35.0], "buffer_m": 500}
    assert c.post("/v1/sites", headers=world.auth("fra"), json=site).status_code == 201
    [d] = [x for x in c.get("/v1/inbox", headers=world.auth("usa")).json() if x["reason"] == "site"]
    assert d["payload"]["site"]["id"] == "h1"
    assert c.post(f"/v1/deliveries/{d['id']}/ack", headers=world.auth("usa")).status_code == 200
    audit = c.get("/v1/audit/sites/h1", headers=world.auth("fra")).json()
    got = {r["party_id"]: r["acknowledged_at"] is not None for r in audit["recipients"]}
    assert got == {"usa": True, "rus": False}
    assert error(c.get("/v1/audit/sites/h1", headers=world.auth("rus"))) == (404, "not_found")


def test_receipt_download_checks_offline_against_the_published_key(world: World) -> None:
    did = _filed_and_acked(world)
    c = world.client
    head = c.get("/v1/ledger/head", headers=world.auth("fra")).json()
    [pinned] = head["service_keys"].values()
    assert head["seq"] == world.service.repo.ledger_head()[0]  # type: ignore[index]
    receipt = c.get(f"/v1/deliveries/{did}/receipt", headers=world.auth("fra")).json()
    result = check_receipt(receipt, load_public_key(pinned))
    assert result.valid and result.acknowledged_at is not None, result.problems
    assert "airlift wing" not in json.dumps(receipt)  # the unit was not released to fra
    assert error(c.get(f"/v1/deliveries/{did}/receipt", headers=world.auth("rus"))) == (404, "not_found")
    assert c.get(f"/v1/deliveries/{did}/receipt", headers=world.auth("admin")).status_code == 200
    # the service's ledger key is its token issuer key: the one in the JWKS
    assert [k["x"] for k in c.get("/v1/keys").json()["keys"]] == [pinned]


def test_chain_verification_is_for_admins(world: World) -> None:
    _filed_and_acked(world)
    c = world.client
    report = c.get("/v1/ledger/verify", headers=world.auth("admin")).json()
    assert report["ok"] is True and report["entries"] == world.service.repo.ledger_head()[0]  # type: ignore[index]
    assert error(c.get("/v1/ledger/verify", headers=world.auth("usa"))) == (403, "forbidden")


def test_reading_released_planning_detail_is_a_recorded_disclosure(world: World) -> None:
    c = world.client
    body = NOTICE | {"detail": {"purpose": "resupply run", "unit": "412 AEW"}}
    assert c.post("/v1/operations", headers=world.auth("usa"), json=body).status_code == 201
    before = len(world.service.repo.find_ledger(kinds=["disclosure"]))
    shown = c.get("/v1/operations/usa-1", headers=world.auth("fra")).json()
    assert shown["detail"] == {"purpose": "resupply run"}  # released to fra: purpose only
    assert "detail" not in c.get("/v1/operations/usa-1", headers=world.auth("rus")).json()
    assert c.get("/v1/operations", headers=world.auth("fra")).status_code == 200
    c.get("/v1/operations/usa-1", headers=world.auth("usa"))  # the owner reading its own: no disclosure
    entries = world.service.repo.find_ledger(kinds=["disclosure"])[before:]
    # the listing showed fra the same view again in the same period: counted, not written again (issue 20)
    assert [(e.party_id, e.body["via"]) for e in entries] == [("fra", "GET /v1/operations/usa-1")]
    assert all(o["view"]["detail"] == {"purpose": "resupply run"} for e in entries for o in e.body["operations"])
    audit = c.get("/v1/audit/shown", params={"party": "fra", "operation": "usa-1"}, headers=world.auth("admin"))
    assert audit.status_code == 200 and "resupply run" in audit.text


def test_a_recipient_shown_coarsened_times_holds_a_complete_receipt_without_the_exact_window(world: World) -> None:
    from forewarn.core.model import Agreement, Coarsening, SeparationMinima

    minima = SeparationMinima(horizontal_m=9260, vertical_m=305, time_s=600)
    world.service.put_agreement(Agreement(id="mou", name="MoU", parties=["usa", "rus", "fra"], default_minima=minima,
                                          ack_deadline_s=900, min_notice_s=3600,
                                          coarsening=Coarsening(of=["usa"], time_step_s=3600)), world.clock.now)
    c = world.client
    body = NOTICE | {"volumes": [volume(38, 35, start_h=1.25, end_h=2.75)]}
    assert c.post("/v1/operations", headers=world.auth("usa"), json=body).status_code == 201
    [d] = c.get("/v1/inbox", headers=world.auth("rus")).json()
    assert c.post(f"/v1/deliveries/{d['id']}/ack", headers=world.auth("rus")).status_code == 200
    receipt = c.get(f"/v1/deliveries/{d['id']}/receipt", headers=world.auth("rus")).json()
    result = check_receipt(receipt)
    assert result.valid and result.acknowledged_at is not None, result.problems
    assert "withheld" not in receipt
    text = json.dumps(receipt)
    assert "01:15" not in text and "02:45" not in text  # the exact window (T0 + 1.25 h / 2.75 h) is not in it


def test_a_legacy_origin_entry_recording_the_exact_window_is_withheld_from_a_coarsened_recipient(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Notice entries written before e5e1bae carried the operation's exact window in clear (``start``, ``end``);
    a ledger holding them must not hand them to a recipient shown coarsened times."""
    from forewarn.core.model import Agreement, Coarsening, SeparationMinima

    minima = SeparationMinima(horizontal_m=9260, vertical_m=305, time_s=600)
    world.service.put_agreement(Agreement(id="mou", name="MoU", parties=["usa", "rus", "fra"], default_minima=minima,
                                          ack_deadline_s=900, min_notice_s=3600,
                                          coarsening=Coarsening(of=["usa"], time_step_s=3600)), world.clock.now)
    ledger = world.service.ledger
    append = ledger.append

    def as_before(kind: str, subject: str, body: dict[str, Any], now: Any, **kw: Any) -> Any:
        if kind == "notice":  # what the notice entry held before: the exact window
            op = world.service.repo.get_operation(subject)
            assert op is not None
            body = body | {"start": op.start, "end": op.end}
        return append(kind, subject, body, now, **kw)

    monkeypatch.setattr(ledger, "append", as_before)
    c = world.client
    body = NOTICE | {"volumes": [volume(38, 35, start_h=1.25, end_h=2.75)]}
    assert c.post("/v1/operations", headers=world.auth("usa"), json=body).status_code == 201
    [d] = c.get("/v1/inbox", headers=world.auth("rus")).json()
    origin = ledger.repo.find_ledger(kinds=["notice"])[-1]
    assert "start" in origin.body  # the legacy form really is in the ledger
    receipt = c.get(f"/v1/deliveries/{d['id']}/receipt", headers=world.auth("rus")).json()
    text = json.dumps(receipt)
    assert receipt["withheld"] and "01:15" not in text and "02:45" not in text
    assert origin.seq in {link["seq"] for link in receipt["links"]}  # still linked, its content not given
    admin = c.get(f"/v1/deliveries/{d['id']}/receipt", headers=world.auth("admin"))
    assert admin.status_code == 200 and "withheld" not in admin.json()  # an admin holds the whole entry
