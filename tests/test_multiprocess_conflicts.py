"""Issue 16, several processes, one truth: three ``forewarn serve`` processes on one PostgreSQL database, eight
clients filing mutually conflicting notices at all three at once. Every conflicting pair is reported to both
sides (the later filing's answer, the earlier filing's owner's inbox, at whichever process), the ledger verifies,
and every delivery is stored once and reaches its webhook receiver exactly once."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import PostgresServer
from tests.multiprocess_support import agree, pg_cli, pg_party, servers
from tests.server_support import Receiver

pytestmark = pytest.mark.slow

START = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=4)


def vol(lon: float, lat: float, radius_m: float = 3000) -> dict[str, Any]:
    return {"footprint": {"kind": "circle", "center": [lon, lat], "radius_m": radius_m}, "lower_m": 1000,
            "upper_m": 3000, "start": START.isoformat(), "end": (START + timedelta(hours=1)).isoformat()}


def test_conflicting_filings_at_three_processes_are_each_told_of_the_other(
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
            headers = {p: procs[0].token(c) for p, c in creds.items()}

            def file(i: int) -> tuple[str, str, dict[str, Any]]:
                party, server = parties[i % len(parties)], procs[i % len(procs)]
                r = httpx.post(f"{server.url}/v1/operations", headers=headers[party], timeout=60,
                               json={"id": f"op-{i:03d}", "activity_class": "transport", "volumes": [vol(10, 50)]})
                assert r.status_code == 201, r.text
                return party, f"op-{i:03d}", r.json()

            with ThreadPoolExecutor(max_workers=8) as pool:
                results = list(pool.map(file, range(48)))
            inboxes = {p: httpx.get(f"{procs[i % 3].url}/v1/inbox", headers=headers[p],
                                    params={"limit": 1000}).json() for i, p in enumerate(parties)}
            owed = _webhook_deliveries(url)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not owed <= receiver.ids():
                time.sleep(0.2)
            time.sleep(1.0)  # a doubled attempt would arrive meanwhile
        owner = {op: party for party, op, _ in results}
        reported = {(out["operation_id"], c["b"]["operation_id"]) for _, _, out in results for c in out["conflicts"]}
        for a in owner:  # every pair of operations of different parties (all intersect) was reported ...
            for b in owner:
                if a < b and owner[a] != owner[b]:
                    assert (a, b) in reported or (b, a) in reported, (a, b)
        for later, earlier in reported:  # ... and the earlier one's owner was told, whichever process it used
            told = [d for d in inboxes[owner[earlier]] if d["payload"]["operation"]["id"] == later]
            assert any(c["b"]["operation_id"] == earlier for d in told for c in d["payload"]["conflicts"])
        pg_cli(url, "ledger", "verify")  # exit status 0: the chain holds
        assert owed and owed <= receiver.ids()  # no delivery lost ...
        counts: dict[str, int] = {}
        for did, _, _ in receiver.received:
            counts[did] = counts.get(did, 0) + 1
        assert all(n == 1 for n in counts.values()), {d: n for d, n in counts.items() if n > 1}  # ... or doubled
    finally:
        receiver.stop()


def _webhook_deliveries(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {r[0] for r in conn.execute("SELECT id FROM deliveries WHERE channel = 'primary'")}
