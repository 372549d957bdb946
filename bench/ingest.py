"""Benchmark: ingestion of live position updates with quality checks, conformance checking and storage.

Not a test. A synthetic picture: ``--tracks`` aircraft of party ``east`` spread over a 400 km x 400 km box near
35 N 38 E, each belonging to one of 50 active operations whose volumes (40 km squares, FL0-FL400) contain it, plus
200 notified volumes of party ``west`` (5 km circles, some in the aircraft's way: intrusions happen), every aircraft
reporting once a second at 200-250 m/s. The feed is cut into ingest calls of ``--batch`` positions.

Timed, in the same run, on the same positions:

* ``ingest``: the real :meth:`forewarn.service.tracking.Tracker.ingest` (feed-quality screen, 4D conformance and
  intrusion tests against every live volume, one SQLite transaction storing positions, track states, counters,
  alerts and their deliveries and ledger entries); prediction passes are left out (``bench/tactical.py`` times them);
* anchors: ``quality`` (the feed-quality screen alone), ``conformance`` (the two 4D containment queries alone) and
  ``storage`` (storing the same positions alone: one columnar chunk per batch in one transaction).

Writes ``bench/results/ingest.json`` and the "Ingestion" section of ``bench/RESULTS.md``.

    python bench/ingest.py [--tracks 2000] [--seconds 60] [--batch 1000,10000,50000]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import BENCH_DIR, git, host_info, write_section

from forewarn.core.model import Agreement, Operation, Party, SeparationMinima
from forewarn.geo.volume import Volume4D
from forewarn.service.notices import Forewarn
from forewarn.service.settings import Settings
from forewarn.service.tracking import Tracker, TrackSettings
from forewarn.store import SQLiteRepository
from forewarn.store.sqlite.tracks import TrackStore
from forewarn.tracks.conformance import Tolerance, VolumeLayer
from forewarn.tracks.model import PositionBatch
from forewarn.tracks.quality import FeedQuality

T0 = datetime(2015, 11, 17, 12, 0, tzinfo=UTC)
M_PER_DEG_LAT = 110_950.0


def world(db: Path, rng: np.random.Generator) -> tuple[Forewarn, list[tuple[float, float]]]:
    """Parties, agreement, 50 active east operations (centres returned) and 200 notified west circles."""
    svc = Forewarn(SQLiteRepository(db), Settings(db=db))
    for pid in ("east", "west"):
        svc.put_party(Party(id=pid, name=pid))
    svc.put_agreement(Agreement(id="ew", name="ew", parties=["east", "west"],
                                default_minima=SeparationMinima(horizontal_m=9260, vertical_m=305, time_s=600)))
    window = {"start": T0 - timedelta(hours=1), "end": T0 + timedelta(hours=3)}
    filed = T0 - timedelta(hours=2)
    centres = [(float(lon), float(lat)) for lon, lat in zip(rng.uniform(36.0, 40.0, 50), rng.uniform(33.5, 36.5, 50),
                                                            strict=True)]
    for k, (lon, lat) in enumerate(centres):
        d = 0.18
        vol = Volume4D.model_validate({"footprint": {"kind": "polygon", "coordinates": [
            [lon - d, lat - d], [lon + d, lat - d], [lon + d, lat + d], [lon - d, lat + d]]},
            "lower_m": 0, "upper_m": 12_200} | window)
        svc.notify(Operation(id=f"east-{k}", party_id="east", activity_class="transport", volumes=[vol]), filed)
        svc.activate(f"east-{k}", "east", filed)
    for k in range(200):
        vol = Volume4D.model_validate({"footprint": {"kind": "circle", "center": [
            float(rng.uniform(36.0, 40.0)), float(rng.uniform(33.5, 36.5))], "radius_m": 5000},
            "lower_m": 0, "upper_m": 12_200} | window)
        svc.notify(Operation(id=f"west-{k}", party_id="west", activity_class="isr_orbit", volumes=[vol]), filed)
    return svc, centres


def feed(n_tracks: int, seconds: int, centres: list[tuple[float, float]], rng: np.random.Generator
         ) -> tuple[PositionBatch, list[str]]:
    """Positions of ``n_tracks`` aircraft, one a second for ``seconds``, in time order; and each track's operation."""
    op = rng.integers(0, len(centres), n_tracks)
    lon0 = np.array([centres[k][0] for k in op]) + rng.uniform(-0.1, 0.1, n_tracks)
    lat0 = np.array([centres[k][1] for k in op]) + rng.uniform(-0.1, 0.1, n_tracks)
    gs = rng.uniform(200, 250, n_tracks)
    trk = rng.uniform(0, 360, n_tracks)
    alt = rng.uniform(3000, 11_000, n_tracks)
    t = np.repeat(np.arange(seconds, dtype=float), n_tracks) + T0.timestamp()
    k = np.tile(np.arange(n_tracks), seconds)
    dt = t - T0.timestamp()
    north, east = gs[k] * dt * np.cos(np.radians(trk[k])), gs[k] * dt * np.sin(np.radians(trk[k]))
    lat = lat0[k] + north / M_PER_DEG_LAT
    lon = lon0[k] + east / (M_PER_DEG_LAT * np.cos(np.radians(lat0[k])))
    batch = PositionBatch(track_id=np.array([f"e{i:05d}" for i in k], dtype=object), t_s=t, lat_deg=lat,
                          lon_deg=lon, alt_m=alt[k], gs_mps=gs[k], track_deg=trk[k], vs_mps=np.zeros(len(t)))
    return batch, [f"east-{i}" for i in op]


def run(n_tracks: int, seconds: int, batch_size: int) -> dict[str, Any]:
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "ingest.sqlite"
        svc, centres = world(db, rng)
        positions, op_of = feed(n_tracks, seconds, centres, rng)
        tracker = Tracker(svc, TrackStore(svc.repo), TrackSettings(predict_interval_s=math.inf))
        # tracks are tied to their operations once (the API does it per request with ?operation_id=)
        first = positions.take(np.arange(n_tracks))
        for op_id in sorted(set(op_of)):
            rows = np.array([i for i, o in enumerate(op_of) if o == op_id])
            tracker.ingest(first.take(rows), "east", "bench", T0, op_id)
        rest = positions.take(np.arange(n_tracks, len(positions)))
        cuts = list(range(0, len(rest), batch_size))
        alerts = 0
        start = time.perf_counter()
        for lo in cuts:
            out = tracker.ingest(rest.take(np.arange(lo, min(len(rest), lo + batch_size))), "east", "bench", T0)
            alerts += len(out.alerts)
        ingest_s = time.perf_counter() - start
        stored = TrackStore(svc.repo).count_positions()
        # anchors on the same positions
        quality = FeedQuality()
        start = time.perf_counter()
        for lo in cuts:
            quality.check(rest.take(np.arange(lo, min(len(rest), lo + batch_size))), "anchor")
        quality_s = time.perf_counter() - start
        layers = [VolumeLayer(svc.airspace, Tolerance(185.0, 30.0)), VolumeLayer(svc.airspace)]
        start = time.perf_counter()
        for lo in cuts:
            part = rest.take(np.arange(lo, min(len(rest), lo + batch_size)))
            for layer in layers:
                layer.containing(part.lon_deg, part.lat_deg, part.alt_m, part.t_s)
        conformance_s = time.perf_counter() - start
        store = TrackStore(svc.repo)
        start = time.perf_counter()
        for lo in cuts:
            with svc.repo.transaction():
                store.add_positions("east", "anchor", rest.take(np.arange(lo, min(len(rest), lo + batch_size))))
        insert_s = time.perf_counter() - start
        svc.repo.close()
    n = len(rest)
    return {
        "tracks": n_tracks, "seconds": seconds, "batch": batch_size, "positions": n, "stored": stored - n_tracks,
        "alerts": alerts, "ingest_s": round(ingest_s, 3), "ingest_per_s": round(n / ingest_s),
        "quality_per_s": round(n / quality_s), "conformance_per_s": round(n / conformance_s),
        "storage_per_s": round(n / insert_s),
    }


def write_results(results: list[dict[str, Any]], command: str) -> None:
    import forewarn

    meta = {"command": command, "commit": git("rev-parse", "--short", "HEAD"),
            "dirty": bool(git("status", "--porcelain")), "load_average": os.getloadavg(),
            "host": host_info({"forewarn": forewarn.__version__, "numpy": np.__version__})}
    out = BENCH_DIR / "results" / "ingest.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n", encoding="utf-8")
    host = meta["host"]
    lines = [
        "## Ingestion (bench/ingest.py)", "",
        f"`{command}` at {meta['commit']}{' (dirty tree)' if meta['dirty'] else ''}, {host['date']}; "
        f"{host['cpu']}, {host['nproc']} cores, {host['memory_gib']} GiB, Python {host['python']}; load average "
        f"{', '.join(f'{x:.1f}' for x in meta['load_average'])} at the end (the machine is shared).", "",
        "Positions per second through `Tracker.ingest` (quality screen + 4D conformance and intrusion tests against "
        "250 live volumes + one SQLite transaction storing positions as columnar chunks, track states, counters and "
        "alerts with their deliveries and ledger entries), and the anchors timed on the same "
        "positions in the same run. Target: 100,000 position updates per second with conformance checking.", "",
        "| tracks | batch | positions | alerts | ingest /s | quality alone /s | conformance alone /s | "
        "storage alone /s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {r['tracks']:,} | {r['batch']:,} | {r['positions']:,} | {r['alerts']:,} | {r['ingest_per_s']:,} | "
              f"{r['quality_per_s']:,} | {r['conformance_per_s']:,} | {r['storage_per_s']:,} |"
              for r in results]
    section = "\n".join(lines) + "\n"
    write_section(BENCH_DIR / "RESULTS.md", lines[0], section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tracks", type=int, default=2000)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--batch", default="1000,10000,50000")
    args = parser.parse_args()
    results = []
    for size in (int(x) for x in args.batch.split(",")):
        r = run(args.tracks, args.seconds, size)
        print(json.dumps(r))
        results.append(r)
    write_results(results, "python bench/ingest.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
