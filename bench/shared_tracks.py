"""Benchmark: live tracks shared by two processes' trackers on one PostgreSQL database (issue 16).

Not a test. Two parties, ``east`` and ``west``, bound by one agreement (5 NM, 1,000 ft), each with ``--tracks``
aircraft flying straight at 200-250 m/s in a 200 km box, reporting once a second for ``--seconds``. Each second,
east's reports are one ingest call and west's another (prediction passes on: one per second of feed time). Timed
on the same feed, in the same run:

* ``sqlite``: one tracker on SQLite (today's single process);
* ``postgres-one``: one tracker on PostgreSQL, fed both parties;
* ``postgres-two``: two services (each its own pool, airspace and tracker, as two processes have) on one database,
  east fed to the first and west to the second: each call first applies what the other committed.

Prints per variant: ms per ingest call (median and 95th percentile, wall clock, prediction passes included),
positions/s, and the alerts raised (the same in all three: one tracker state).

    python bench/shared_tracks.py [--tracks 200] [--seconds 60] [--server postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from forewarn.core.model import Agreement, Party, SeparationMinima
from forewarn.service.compose import open_track_store
from forewarn.service.notices import Forewarn
from forewarn.service.settings import Settings
from forewarn.service.tracking import Tracker
from forewarn.store import SQLiteRepository
from forewarn.store.postgres.repository import PostgresRepository
from forewarn.tracks.model import PositionBatch

T0 = datetime(2015, 11, 17, 12, 0, tzinfo=UTC)
M_PER_DEG_LAT = 110_950.0


def seed(svc: Forewarn) -> Forewarn:
    for pid in ("east", "west"):
        svc.put_party(Party(id=pid, name=pid))
    svc.put_agreement(Agreement(id="ew", name="ew", parties=["east", "west"],
                                default_minima=SeparationMinima(horizontal_m=9260, vertical_m=305, time_s=600)))
    return svc


def reports(party: str, n: int, seconds: int, rng: np.random.Generator) -> list[PositionBatch]:
    """One batch per second of ``n`` tracks of ``party``."""
    lon0, lat0 = rng.uniform(37.0, 39.0, n), rng.uniform(34.0, 36.0, n)
    gs, trk, alt = rng.uniform(200, 250, n), rng.uniform(0, 360, n), rng.uniform(3000, 4000, n)
    out = []
    for s in range(seconds):
        north, east = gs * s * np.cos(np.radians(trk)), gs * s * np.sin(np.radians(trk))
        lat = lat0 + north / M_PER_DEG_LAT
        out.append(PositionBatch(track_id=np.array([f"{party[0]}{i:04d}" for i in range(n)], dtype=object),
                                 t_s=np.full(n, T0.timestamp() + s), lat_deg=lat,
                                 lon_deg=lon0 + east / (M_PER_DEG_LAT * np.cos(np.radians(lat0))), alt_m=alt,
                                 gs_mps=gs, track_deg=trk, vs_mps=np.zeros(n)))
    return out


def timed(trackers: dict[str, Tracker], feeds: dict[str, list[PositionBatch]]) -> dict[str, Any]:
    calls: list[float] = []
    alerts: dict[str, int] = {}
    positions = 0
    for s in range(len(feeds["east"])):
        for party in ("east", "west"):
            start = time.perf_counter()
            out = trackers[party].ingest(feeds[party][s], party, "bench", T0 + timedelta(seconds=s))
            calls.append(time.perf_counter() - start)
            positions += out.accepted
            for a in out.alerts:
                alerts[a.kind] = alerts.get(a.kind, 0) + 1
    ms = np.array(calls) * 1000
    return {"ms_per_call_median": round(float(np.median(ms)), 2),
            "ms_per_call_p95": round(float(np.percentile(ms, 95)), 2),
            "positions_per_s": round(positions / sum(calls)), "alerts_seen_by_feeders": alerts}


def pg_database(server: str, name: str) -> str:
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    return server.rsplit("/", 1)[0] + "/" + name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a database on the server to connect to while creating the benchmark's own")
    parser.add_argument("--tracks", type=int, default=200, help="tracks per party")
    parser.add_argument("--seconds", type=int, default=60, help="seconds of feed (one report a second)")
    args = parser.parse_args()
    feeds = {p: reports(p, args.tracks, args.seconds, np.random.default_rng(k)) for k, p in enumerate(["east", "west"])}
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        svc = seed(Forewarn(SQLiteRepository(Path(tmp) / "t.sqlite"), Settings(db=Path(tmp) / "t.sqlite")))
        one = Tracker(svc, open_track_store(svc.repo))
        results["sqlite"] = timed({"east": one, "west": one}, feeds)
        for variant, processes in (("postgres-one", 1), ("postgres-two", 2)):
            url = pg_database(args.server, f"forewarn_bench_{os.getpid()}_{processes}")
            services = [Forewarn(PostgresRepository(url), Settings(db=Path(tmp) / "u.sqlite"))
                        for _ in range(processes)]
            seed(services[0])
            trackers = [Tracker(s, open_track_store(s.repo)) for s in services]
            results[variant] = timed({"east": trackers[0], "west": trackers[-1]}, feeds)
            if processes == 2:
                shared = [t.shared for t in trackers]
                results[variant]["changes_applied_from_the_other"] = [s.caught_up if s else 0 for s in shared]
            for s in services:
                s.repo.close()
            with psycopg.connect(args.server, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE {url.rsplit('/', 1)[1]}")
    print(f"{args.tracks} tracks per party, {args.seconds} s, 1 report/s each, {2 * args.seconds} ingest calls")
    for variant, row in results.items():
        print(f"{variant:14s} {row}")


if __name__ == "__main__":
    main()
