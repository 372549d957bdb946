"""Issue 16, live tracks across real processes: two ``forewarn serve`` processes on one PostgreSQL database.
Party usa feeds its track to process A, party fra to process B, head-on: the predicted conflict is raised once,
and both parties see it (inbox and event stream) whichever process they are connected to. Then kill -9 of a
process: the other goes on from the same shared tracker state (docs/tracks.md, "Several processes")."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import PostgresServer
from tests.multiprocess_support import agree, pg_party, servers
from tests.server_support import Server, sse_events

pytestmark = pytest.mark.slow

T0_S = float(int(datetime.now(UTC).timestamp()))
"""Feed time of the first positions (POSIX seconds)."""
M_PER_DEG_LON = 71_700.0  # at 50 N, near enough to place the test tracks (the code under test uses pyproj)
STEP_S = 10.0
GS = 250.0


def position(track: str, lon0: float, east: bool, k: int, lat: float = 50.3, k0: int = 0) -> dict[str, Any]:
    """Report ``k`` (every 10 s) of a track flying due east or west at 250 m/s, 2,000 m, along ``lat``, at
    ``lon0`` at report ``k0``."""
    sign = 1.0 if east else -1.0
    return {"track_id": track, "t_s": T0_S + k * STEP_S, "lat_deg": lat,
            "lon_deg": lon0 + sign * GS * (k - k0) * STEP_S / M_PER_DEG_LON, "alt_m": 2000.0, "gs_mps": GS,
            "track_deg": 90.0 if east else 270.0, "vs_mps": 0.0}


def feed(server: Server, headers: dict[str, str], *positions: dict[str, Any]) -> dict[str, Any]:
    r = httpx.post(f"{server.url}/v1/tracks/positions", headers=headers, content=json.dumps(list(positions)),
                   params={"source": "radar"}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == len(positions), r.text
    out: dict[str, Any] = r.json()
    return out


def alert_kinds(server: Server, headers: dict[str, str]) -> list[tuple[str, str]]:
    """(kind, encounter) of the alerts in a party's inbox at ``server``, oldest first."""
    r = httpx.get(f"{server.url}/v1/inbox", headers=headers, params={"limit": 1000})
    assert r.status_code == 200, r.text
    return [(d["payload"]["alert"]["kind"], d["payload"]["alert"]["encounter"]) for d in r.json()
            if d["reason"] == "alert"]


def stored_alerts(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return [(r[0], r[1]) for r in conn.execute("SELECT kind, encounter FROM track_alerts ORDER BY at, id")]


def head_on(usa_at: Server, fra_at: Server, h_usa: dict[str, str], h_fra: dict[str, str], ks: range,
            pair: str = "1", lat: float = 50.3) -> list[str]:
    """usa's track u<pair> fed to ``usa_at`` and fra's f<pair> to ``fra_at``: 20 km apart at the first report of
    ``ks``, closing at 500 m/s on one line (they pass 4 reports later). The kinds of the alerts in the answers to
    usa's feed (raised by the passes ``usa_at`` ran)."""
    raised = []
    for k in ks:
        answer = feed(usa_at, h_usa, position(f"u{pair}", 10.0, True, k, lat, ks[0]))
        raised += [a["kind"] for a in answer["alerts"]]
        feed(fra_at, h_fra, position(f"f{pair}", 10.0 + 20_000 / M_PER_DEG_LON, False, k, lat, ks[0]))
    return raised


CONFLICT_1 = "conflict:fra/f1|usa/u1"


def test_a_conflict_between_parties_fed_through_two_processes_is_raised_once_and_seen_at_both(
        postgres_server: PostgresServer, tmp_path: Path) -> None:
    url = postgres_server.create()
    admin, usa, fra = pg_party(url, "admin", "--scopes", "admin"), pg_party(url, "usa"), pg_party(url, "fra")
    with servers(url, tmp_path, 2) as (a, b):
        agree(a, a.token(admin), ["usa", "fra"])  # 1 km, 300 m
        h_usa, h_fra = a.token(usa), a.token(fra)
        # each party's event stream is open at the process the *other* party feeds
        got: dict[str, list[dict[str, Any]]] = {"usa": [], "fra": []}
        readers = [threading.Thread(target=lambda p=p, s=s, h=h: got[p].extend(sse_events(f"{s.url}/v1/stream", h, 1,
                                                                                           timeout=60)))
                   for p, s, h in (("usa", b, h_usa), ("fra", a, h_fra))]
        for reader in readers:
            reader.start()
        head_on(a, b, h_usa, h_fra, range(25))  # past each other at k = 4, then 200 s apart: cleared
        for reader in readers:
            reader.join(timeout=60)
        for party, headers in (("usa", h_usa), ("fra", h_fra)):
            for server in (a, b):
                assert alert_kinds(server, headers) == [("predicted_conflict", CONFLICT_1), ("cleared", CONFLICT_1)]
            assert [e["data"]["payload"]["alert"]["kind"] for e in got[party]] == ["predicted_conflict"]
        # both processes show both tracks at their last report (a read is at most REFRESH_S = 0.5 s behind)
        want = [("fra", "f1", T0_S + 24 * STEP_S), ("usa", "u1", T0_S + 24 * STEP_S)]
        for server in (a, b):
            deadline, shown = time.monotonic() + 10, None
            while shown != want and time.monotonic() < deadline:
                time.sleep(0.2)
                tracks = httpx.get(f"{server.url}/v1/tracks", headers=h_fra).json()
                shown = [(t["party_id"], t["track_id"], t["position"]["t_s"]) for t in tracks]
            assert shown == want
    assert stored_alerts(url) == [("predicted_conflict", CONFLICT_1), ("cleared", CONFLICT_1)]


def test_after_kill_9_of_a_process_the_other_goes_on_from_the_shared_state(
        postgres_server: PostgresServer, tmp_path: Path) -> None:
    url = postgres_server.create()
    admin, usa, fra = pg_party(url, "admin", "--scopes", "admin"), pg_party(url, "usa"), pg_party(url, "fra")
    with servers(url, tmp_path, 2) as (a, b):
        agree(a, a.token(admin), ["usa", "fra"])
        h_usa, h_fra = a.token(usa), a.token(fra)
        # the passes run at the first report of each new feed second, usa's, at A: A raises the conflict (still
        # open: the tracks pass at k = 4) and holds the time of the last pass
        assert head_on(a, b, h_usa, h_fra, range(3)) == ["predicted_conflict"]
        assert alert_kinds(b, h_usa) == [("predicted_conflict", CONFLICT_1)]
        a.kill9()
        # usa's feed fails over to B: the open encounter is not raised again, and clears once
        for k in range(3, 25):
            feed(b, h_usa, position("u1", 10.0, True, k))
            feed(b, h_fra, position("f1", 10.0 + 20_000 / M_PER_DEG_LON, False, k))
        # a second encounter, 50 km north, is raised by B alone
        head_on(b, b, h_usa, h_fra, range(25, 28), pair="2", lat=50.75)
        kinds = alert_kinds(b, h_fra)
    conflict_2 = "conflict:fra/f2|usa/u2"
    assert kinds == [("predicted_conflict", CONFLICT_1), ("cleared", CONFLICT_1), ("predicted_conflict", conflict_2)]
    assert stored_alerts(url) == kinds
