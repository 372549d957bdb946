"""Issue 16: event streams reach a subscriber connected to any process. Two ``forewarn serve`` processes on one
PostgreSQL database; a party's event stream is open at process B; filings made at process A reach it (LISTEN/
NOTIFY wakes B's streams and tells its in-memory tail that it no longer holds everything)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PostgresServer
from tests.multiprocess_support import agree, pg_party, servers
from tests.server_support import sse_events

pytestmark = pytest.mark.slow

START = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=4)


def body(op_id: str, lon: float) -> dict[str, Any]:
    volume = {"footprint": {"kind": "circle", "center": [lon, 50], "radius_m": 3000}, "lower_m": 1000,
              "upper_m": 3000, "start": START.isoformat(), "end": (START + timedelta(hours=1)).isoformat()}
    return {"id": op_id, "activity_class": "transport", "volumes": [volume]}


def test_a_filing_at_one_process_reaches_a_stream_at_another(postgres_server: PostgresServer,
                                                             tmp_path: Path) -> None:
    url = postgres_server.create()
    admin, usa, fra = pg_party(url, "admin", "--scopes", "admin"), pg_party(url, "usa"), pg_party(url, "fra")
    with servers(url, tmp_path, 2) as (a, b):
        agree(a, a.token(admin), ["usa", "fra"])
        h_usa, h_fra = a.token(usa), a.token(fra)
        # a delivery published at B first: B's in-memory tail then claims to hold everything after it
        assert httpx.post(f"{b.url}/v1/operations", headers=h_usa, json=body("op-b", 10)).status_code == 201
        got: list[dict[str, Any]] = []
        reader = threading.Thread(target=lambda: got.extend(sse_events(f"{b.url}/v1/stream", h_fra, 4, timeout=30)))
        reader.start()
        time.sleep(1.0)  # the stream is open and has read the backlog (op-b) before the filings at A
        for i in range(3):
            r = httpx.post(f"{a.url}/v1/operations", headers=h_usa, json=body(f"op-a{i}", 11 + i))
            assert r.status_code == 201, r.text
        reader.join(timeout=60)
    assert [e["data"]["payload"]["operation"]["id"] for e in got] == ["op-b", "op-a0", "op-a1", "op-a2"]
