"""Issue 16: kill -9 of one of three ``forewarn serve`` processes on one PostgreSQL database, under load from six
clients. Every filing answered 2xx is stored, the two others keep serving (a client whose process died moves on
to the next), every webhook delivery owed goes out to a real receiver, and the ledger verifies.

Delivery is **at least once**, with receivers that deduplicate by ``Forewarn-Delivery-Id``: an attempt the killed
process had claimed (``FOR UPDATE SKIP LOCKED``, a lease of 30 s) is made again by another process after the
lease, and if the killed process had posted it before dying, the receiver gets it twice, with the same id and the
same signed body. Every other delivery arrives exactly once."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import PostgresServer
from tests.multiprocess_support import agree, pg_cli, pg_party, servers, webhook_deliveries
from tests.server_support import Receiver

pytestmark = pytest.mark.slow

START = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=4)
CLIENTS = 6
FILINGS_PER_CLIENT = 15
KILL_AFTER = 20
"""Filings answered 2xx (in all) before the kill."""


def vol(i: int) -> dict[str, Any]:
    lon = 10 + (i % 5) * 0.02  # five clusters of overlapping volumes: conflicts and deliveries in every filing
    return {"footprint": {"kind": "circle", "center": [lon, 50], "radius_m": 2000}, "lower_m": 1000,
            "upper_m": 3000, "start": START.isoformat(), "end": (START + timedelta(hours=1)).isoformat()}


def test_kill_9_of_one_process_under_load_loses_no_answered_filing_and_no_owed_delivery(
        postgres_server: PostgresServer, tmp_path: Path) -> None:
    url = postgres_server.create()
    receiver = Receiver()
    receiver.start()
    try:
        admin = pg_party(url, "admin", "--scopes", "admin")
        parties = [f"p{i}" for i in range(4)]
        creds = {p: pg_party(url, p, "--webhook", receiver.url) for p in parties}
        with servers(url, tmp_path, 3) as procs:
            agree(procs[0], procs[0].token(admin), parties)
            heads = {p: procs[0].token(c) for p, c in creds.items()}
            victim = procs[1]
            lock = threading.Lock()
            answered: list[tuple[str, int, bool]] = []  # (operation id, process index, after the kill)
            refused: list[tuple[str, int, str]] = []
            killed = threading.Event()

            def client(c: int) -> None:
                target = c % 3
                for k in range(FILINGS_PER_CLIENT):
                    op_id, party = f"op-{c}-{k:02d}", parties[c % len(parties)]
                    for _ in range(3):  # this process, then the next ones if it is down
                        sent_after_kill = killed.is_set()  # an answer racing the kill may be recorded after it
                        try:
                            r = httpx.post(f"{procs[target].url}/v1/operations", headers=heads[party], timeout=60,
                                           json={"id": op_id, "activity_class": "transport", "volumes": [vol(k)]})
                        except httpx.TransportError as exc:
                            with lock:
                                refused.append((op_id, target, type(exc).__name__))
                            target = (target + 1) % 3
                            continue
                        if r.status_code == 409:  # a retry after a cut answer: it was stored; the id is taken
                            break
                        assert r.status_code == 201, r.text
                        with lock:
                            answered.append((op_id, target, sent_after_kill))
                            if len(answered) == KILL_AFTER:
                                victim.kill9()
                                killed.set()
                        break

            with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
                list(pool.map(client, range(CLIENTS)))
            assert killed.is_set()
            owed = webhook_deliveries(url)
            deadline = time.monotonic() + 90  # past the 30 s lease of the attempts the killed process had claimed
            while time.monotonic() < deadline and not owed <= receiver.ids():
                time.sleep(0.5)
            time.sleep(1.0)
            for survivor in (procs[0], procs[2]):
                assert httpx.get(f"{survivor.url}/v1/health", timeout=10).status_code == 200
        with psycopg.connect(url) as conn:
            stored = {r[0] for r in conn.execute("SELECT id FROM operations")}
        assert {op for op, _, _ in answered} <= stored  # every 2xx is stored
        after = {target for _, target, late in answered if late}
        assert after == {0, 2}  # both survivors served filings after the kill (and the dead one none)
        assert refused and all(target == 1 for _, target, _ in refused)
        assert owed and owed <= receiver.ids()  # every owed delivery went out ...
        bodies: dict[str, set[bytes]] = {}
        for did, body, _ in receiver.received:
            bodies.setdefault(did, set()).add(body)
        assert all(len(b) == 1 for b in bodies.values())  # ... a repeat is the same delivery, the same body
        doubled = sum(1 for did, _, _ in receiver.received) - len(bodies)
        assert doubled <= 16, doubled  # at most what the killed process had in flight (its lanes' slots)
        pg_cli(url, "ledger", "verify")
    finally:
        receiver.stop()
