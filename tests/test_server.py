"""A real server (subprocess): event streams resume, webhooks are signed and retried, a kill -9 loses nothing,
concurrent filings never miss each other."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from forewarn.notify.standard_webhooks import public_keys, verify_standard
from forewarn.notify.webhook import verify_signature
from tests.server_support import Receiver, add_party, running, sse_events

pytestmark = pytest.mark.slow  # the fast tier: python -m pytest -m "not slow"

START = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=4)


def vol(lon: float, lat: float, radius_m: float = 3000, hours: float = 1) -> dict[str, Any]:
    return {"footprint": {"kind": "circle", "center": [lon, lat], "radius_m": radius_m}, "lower_m": 1000,
            "upper_m": 3000, "start": START.isoformat(), "end": (START + timedelta(hours=hours)).isoformat()}


def agree(server_url: str, admin: dict[str, str], parties: list[str]) -> None:
    body = {"id": "mou", "name": "MoU", "parties": parties, "ack_deadline_s": 3600, "min_notice_s": 600,
            "default_minima": {"horizontal_m": 1000, "vertical_m": 300, "time_s": 60}}
    assert httpx.post(f"{server_url}/v1/agreements", headers=admin, json=body).status_code == 201


def test_event_stream_resumes_with_last_event_id(tmp_path: Path) -> None:
    db = tmp_path / "sse.sqlite"
    admin, usa, fra = add_party(db, "admin", "--scopes", "admin"), add_party(db, "usa"), add_party(db, "fra")
    with running(db) as server:
        agree(server.url, server.token(admin), ["usa", "fra"])
        h_usa, h_fra = server.token(usa), server.token(fra)
        for i in range(3):
            r = httpx.post(f"{server.url}/v1/operations", headers=h_usa,
                           json={"id": f"op-{i}", "activity_class": "transport", "volumes": [vol(10 + i, 50)]})
            assert r.status_code == 201, r.text
        first = sse_events(f"{server.url}/v1/stream", h_fra, 2)
        assert [e["data"]["payload"]["operation"]["id"] for e in first] == ["op-0", "op-1"]
        # reconnect after the second event: the third, and one filed while disconnected, arrive; nothing twice
        httpx.post(f"{server.url}/v1/operations", headers=h_usa,
                   json={"id": "op-3", "activity_class": "transport", "volumes": [vol(20, 50)]})
        rest = sse_events(f"{server.url}/v1/stream", h_fra | {"Last-Event-ID": str(first[-1]["id"])}, 2)
        assert [e["data"]["payload"]["operation"]["id"] for e in rest] == ["op-2", "op-3"]
        deadline = time.monotonic() + 10  # the worker records what the streams sent, every pass
        while time.monotonic() < deadline:
            inbox = httpx.get(f"{server.url}/v1/inbox", headers=h_fra).json()
            if all(d["delivered_at"] for d in inbox):
                break
            time.sleep(0.1)
        assert len(inbox) == 4 and all(d["delivered_at"] and d["first_sent_at"] for d in inbox)


def test_webhooks_are_signed_retried_and_escalated(tmp_path: Path) -> None:
    receiver = Receiver(fail_first=2)
    receiver.start()
    try:
        db = tmp_path / "hook.sqlite"
        admin, usa = add_party(db, "admin", "--scopes", "admin"), add_party(db, "usa")
        fra = add_party(db, "fra", "--webhook", receiver.url, "--backup-webhook", receiver.url + "/duty")
        with running(db) as server:
            body = {"id": "mou", "name": "MoU", "parties": ["usa", "fra"], "ack_deadline_s": 1}
            assert httpx.post(f"{server.url}/v1/agreements", headers=server.token(admin), json=body).status_code == 201
            filed = httpx.post(f"{server.url}/v1/operations", headers=server.token(usa),
                               json={"id": "op", "activity_class": "transport", "volumes": [vol(10, 50)]})
            assert filed.status_code == 201
            deadline = time.monotonic() + 20
            h_fra = server.token(fra)
            while time.monotonic() < deadline:
                inbox = httpx.get(f"{server.url}/v1/inbox", headers=h_fra).json()
                if len(inbox) == 2 and all(d["delivered_at"] for d in inbox):
                    break
                time.sleep(0.1)
            jwks = httpx.get(f"{server.url}/v1/keys").json()
        primary = next(d for d in inbox if d["channel"] == "primary")
        backup = next(d for d in inbox if d["channel"] == "backup")
        assert backup["escalation_of"] == primary["id"] and primary["escalated_at"]  # not acknowledged in 1 s
        attempts = [r for r in receiver.received if r[0] == primary["id"]]
        assert len(attempts) >= 3 and primary["attempts"] >= 3 and primary["delivered_at"]  # two 500s, then 204
        assert all(verify_signature(body, sig, jwks) for _, body, sig in receiver.received)
        assert not verify_signature(attempts[0][1] + b" ", attempts[0][2], jwks)  # a changed body fails
        # the Standard Webhooks headers (scheme v1a) verify with the published keys too, and name the delivery
        keys = public_keys(jwks)
        assert all(verify_standard(body, h, keys) and h["webhook-id"] == did
                   for (did, body, _), h in zip(receiver.received, receiver.headers, strict=True))
        assert not verify_standard(attempts[0][1] + b" ", receiver.headers[0], keys)
        assert {json.loads(b)["delivery_id"] for _, b, _ in attempts} == {primary["id"]}  # stable id on retries
    finally:
        receiver.stop()


def test_concurrent_conflicting_filings_see_each_other(tmp_path: Path) -> None:
    db = tmp_path / "race.sqlite"
    admin = add_party(db, "admin", "--scopes", "admin")
    parties = [f"p{i}" for i in range(4)]
    creds = {p: add_party(db, p) for p in parties}
    with running(db) as server:
        agree(server.url, server.token(admin), parties)
        headers = {p: server.token(c) for p, c in creds.items()}

        def file(i: int) -> tuple[str, str, dict[str, Any]]:
            party = parties[i % len(parties)]
            r = httpx.post(f"{server.url}/v1/operations", headers=headers[party], timeout=60,
                           json={"id": f"op-{i:03d}", "activity_class": "transport", "volumes": [vol(10, 50)]})
            assert r.status_code == 201, r.text
            return party, f"op-{i:03d}", r.json()

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(file, range(40)))
        inboxes = {p: httpx.get(f"{server.url}/v1/inbox", headers=headers[p], params={"limit": 1000}).json()
                   for p in parties}
    owner = {op: party for party, op, _ in results}
    reported = {(out["operation_id"], c["b"]["operation_id"]) for _, _, out in results for c in out["conflicts"]}
    # every pair of operations of different parties (all intersect) was reported to the one filed later ...
    for a in owner:
        for b in owner:
            if a < b and owner[a] != owner[b]:
                assert (a, b) in reported or (b, a) in reported, (a, b)
    # ... and delivered to the owner of the earlier one, in that party's inbox
    for later, earlier in reported:
        told = [d for d in inboxes[owner[earlier]] if d["payload"]["operation"]["id"] == later]
        assert any(c["b"]["operation_id"] == earlier for d in told for c in d["payload"]["conflicts"])


def test_kill_9_loses_nothing_and_every_owed_delivery_arrives(tmp_path: Path) -> None:
    receiver = Receiver()
    receiver.start()
    try:
        db = tmp_path / "crash.sqlite"
        admin = add_party(db, "admin", "--scopes", "admin")
        usa = add_party(db, "usa", "--webhook", receiver.url)
        rus = add_party(db, "rus", "--webhook", receiver.url)
        accepted: list[str] = []
        with running(db) as server:
            agree(server.url, server.token(admin), ["usa", "rus"])
            headers = {"usa": server.token(usa), "rus": server.token(rus)}

            def file(i: int) -> str | None:
                party = "usa" if i % 2 else "rus"
                try:
                    r = httpx.post(f"{server.url}/v1/operations", headers=headers[party], timeout=10,
                                   json={"id": f"op-{i:03d}", "activity_class": "transport",
                                         "volumes": [vol(10 + (i % 40) * 0.5, 50 + (i // 40) * 0.5, 1000)]})
                except httpx.HTTPError:
                    return None
                return f"op-{i:03d}" if r.status_code == 201 else None

            with ThreadPoolExecutor(max_workers=8) as pool:
                futures = [pool.submit(file, i) for i in range(300)]
                while sum(f.done() for f in futures) < 120:
                    time.sleep(0.01)
                server.kill9()
                accepted = [op for f in futures if (op := f.result()) is not None]
        assert 100 <= len(accepted) < 300
        with running(db) as server:
            owed = _owed_deliveries(db)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not owed <= receiver.ids():
                time.sleep(0.2)
        stored = _stored(db)
        assert set(accepted) <= set(stored)  # every 2xx is stored ...
        assert all(n == 1 for n in stored.values())  # ... with exactly its notice: nothing half-stored
        assert owed <= receiver.ids()  # every delivery owed arrives after the restart
        bodies: dict[str, set[str]] = {}
        for did, body, _ in receiver.received:
            bodies.setdefault(did, set()).add(json.loads(body)["delivery_id"])
        assert all(ids == {did} for did, ids in bodies.items())  # duplicates only with the same id
    finally:
        receiver.stop()


def _owed_deliveries(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT id FROM deliveries WHERE channel = 'primary'")}


def _stored(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT o.id, (SELECT count(*) FROM notices n WHERE n.operation_id = o.id) FROM operations o")
        out = {r[0]: r[1] for r in rows}
        # every stored notice has its deliveries (the outbox is in the same transaction)
        orphans = conn.execute("SELECT count(*) FROM notices n WHERE NOT EXISTS "
                               "(SELECT 1 FROM deliveries d WHERE d.notice_id = n.id)").fetchone()[0]
        assert orphans == 0
        return out


def _two_party_app(db: Path) -> Any:
    """The application on ``db`` (no delivery worker) with parties usa and fra bound by one agreement."""
    from forewarn.core.model import Agreement, Party
    from forewarn.http.app import create_app
    from forewarn.service.settings import Settings

    app = create_app(Settings(db=db), run_worker=False)
    rt = app.state.runtime
    for p in ("usa", "fra"):
        rt.service.put_party(Party(id=p, name=p.upper()))
    rt.service.put_agreement(Agreement(id="mou", name="m", parties=["usa", "fra"], min_notice_s=0))
    return app


@contextmanager
def _serving(app: Any) -> Iterator[str]:
    """``app`` served by uvicorn on a thread of this process (so the test can reach its runtime); its URL."""
    import threading

    import uvicorn

    from tests.server_support import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    try:
        while not server.started:
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True


def test_a_delivery_committed_while_a_stream_reads_its_inbox_is_not_left_waiting(tmp_path: Path) -> None:
    """A notice that commits between a stream's inbox query and its wait must wake it (no lost wake-up)."""
    from forewarn.core.model import Operation

    app = _two_party_app(tmp_path / "wake.sqlite")
    rt = app.state.runtime
    op = Operation.model_validate({"id": "op-1", "party_id": "usa", "activity_class": "transport",
                                   "volumes": [vol(10, 50)]})
    real_inbox, calls, filed = rt.desk.inbox, [0], [0.0]

    def inbox(*args: Any, **kwargs: Any) -> Any:
        out = real_inbox(*args, **kwargs)  # the stream's query finds nothing yet ...
        calls[0] += 1
        if calls[0] == 1:  # ... and a notice commits right after it
            filed[0] = time.perf_counter()
            rt.service.notify(op, datetime.now(UTC))
        return out

    rt.desk.inbox = inbox
    with _serving(app) as url:
        token = rt.token_for("fra", ["read"])[0]
        with httpx.stream("GET", f"{url}/v1/stream", headers={"Authorization": f"Bearer {token}"},
                          timeout=30) as response:
            for line in response.iter_lines():
                if line.startswith("data: "):
                    waited = time.perf_counter() - filed[0]
                    break
    assert waited < 5.0, f"the delivery waited {waited:.1f} s for the keep-alive"


def test_a_stream_whose_client_disconnects_is_closed_at_once(tmp_path: Path) -> None:
    """A client that goes away ends its stream without waiting for the next write (the 15 s keep-alive): the
    stream is unregistered from the hub."""
    app = _two_party_app(tmp_path / "gone.sqlite")
    rt = app.state.runtime
    with _serving(app) as url:
        token = rt.token_for("fra", ["read"])[0]
        with httpx.stream("GET", f"{url}/v1/stream", headers={"Authorization": f"Bearer {token}"},
                          timeout=30) as response:
            assert next(response.iter_lines()) == ": connected"
            with rt.hub.lock:
                assert [w[2] for w in rt.hub.waiters] == ["fra"]
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            with rt.hub.lock:
                if not rt.hub.waiters:
                    break
            time.sleep(0.05)
        with rt.hub.lock:
            assert not rt.hub.waiters, "the stream of a disconnected client is still registered"
