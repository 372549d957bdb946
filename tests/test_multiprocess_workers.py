"""Issue 16: ``forewarn serve --workers N`` runs N service processes on one port over one PostgreSQL database
(each with its own replica of the live picture and its own delivery worker); on SQLite it is refused."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PostgresServer
from tests.multiprocess_support import agree, pg_party, servers, webhook_deliveries
from tests.server_support import Receiver

START = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=4)


def vol(lon: float, lat: float) -> dict[str, Any]:
    return {"footprint": {"kind": "circle", "center": [lon, lat], "radius_m": 3000}, "lower_m": 1000,
            "upper_m": 3000, "start": START.isoformat(), "end": (START + timedelta(hours=1)).isoformat()}


def test_several_workers_on_sqlite_are_refused_with_the_reason(tmp_path: Path) -> None:
    db = tmp_path / "one.sqlite"
    env = {k: v for k, v in os.environ.items() if k != "FOREWARN_DATABASE_URL"}
    proc = subprocess.run([sys.executable, "-m", "forewarn", "serve", "--db", str(db), "--workers", "2"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 2
    assert "FOREWARN_DATABASE_URL" in proc.stderr and "SQLite" in proc.stderr
    assert not db.exists()  # refused before anything was opened


def test_zero_workers_is_refused(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "forewarn", "serve", "--db", str(tmp_path / "x.sqlite"),
                           "--workers", "0"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--workers" in proc.stderr


@pytest.mark.slow
def test_two_workers_answer_on_one_port_and_each_serves_and_sends(
        postgres_server: PostgresServer, tmp_path: Path) -> None:
    url = postgres_server.create()
    receiver = Receiver()
    receiver.start()
    try:
        admin = pg_party(url, "admin", "--scopes", "admin")
        creds = {p: pg_party(url, p, "--webhook", receiver.url) for p in ("usa", "rus")}
        with servers(url, tmp_path, 1, "--workers", "2") as [server]:
            assert server.proc is not None
            answered: set[int] = set()
            with ThreadPoolExecutor(max_workers=8) as pool:
                for _ in range(50):  # a fresh connection per request: the kernel hands them to either process
                    batch = pool.map(lambda _: httpx.get(f"{server.url}/v1/health", timeout=30).json()["process"],
                                     range(16))
                    answered.update(batch)
                    if len(answered) >= 2:
                        break
            assert len(answered) == 2 and server.proc.pid not in answered, answered
            agree(server, server.token(admin), ["usa", "rus"])
            heads = {p: server.token(c) for p, c in creds.items()}
            outcomes = []
            for i in range(12):  # alternating parties, each filing conflicts with all before it, at either process
                party = ("usa", "rus")[i % 2]
                r = httpx.post(f"{server.url}/v1/operations", headers=heads[party], timeout=60,
                               json={"id": f"{party}-{i}", "activity_class": "transport", "volumes": [vol(10, 50)]})
                assert r.status_code == 201, r.text
                outcomes.append(r.json())
            for i, out in enumerate(outcomes):  # every earlier operation of the other party was found
                others = {f"{('usa', 'rus')[j % 2]}-{j}" for j in range(i) if j % 2 != i % 2}
                assert {c["b"]["operation_id"] for c in out["conflicts"]} == others
            owed = webhook_deliveries(url)
            deadline = time.monotonic() + 60  # the deliveries go out (whichever worker claims them)
            while time.monotonic() < deadline and not owed <= receiver.ids():
                time.sleep(0.2)
            assert owed and owed <= receiver.ids()
    finally:
        receiver.stop()
