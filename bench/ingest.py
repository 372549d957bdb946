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

Streaming phase (``--stream-gb 1.0``, alone): ``forewarn replay`` of a generated Forewarn JSON array of about that
many GB, run as a child process: its peak RSS (target < 300 MB) and positions per second end to end; and the
16-million-empty-objects body of issue 20 through the positions route's parser (refused by the row limit): its time
and peak RSS. Writes the "Streaming feeds" section of ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
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


CHILD_RSS = ("import resource, subprocess, sys, time; t = time.perf_counter(); p = subprocess.run(sys.argv[1:], "
             "capture_output=True, text=True); print(p.returncode, time.perf_counter() - t, "
             "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); print(p.stdout[-3000:], p.stderr[-3000:])")
"""Runs a command as a child of a fresh interpreter: exit code, wall seconds, the child's peak RSS (KiB)."""

HTTP_CHILD = """
import sys
from forewarn.tracks.feeds import TooManyRecords, parse_own_json
from forewarn.service.settings import Settings
body = b"[" + b"{}," * 15_999_999 + b"{}]"
try:
    parse_own_json(body, max_records=Settings().track_batch_max_rows)
except TooManyRecords as exc:
    print("refused:", exc, len(body))
"""
"""The issue-20 body (16 million empty objects, 48 MB) through the positions route's parser with its row limit."""


def measured(*command: str) -> tuple[int, float, float, str]:
    """Exit code, wall seconds, peak RSS (MiB) and the tail of the output of ``command``."""
    out = subprocess.run([sys.executable, "-c", CHILD_RSS, *command], capture_output=True, text=True, check=True)
    code, wall, rss = out.stdout.split("\n", 1)[0].split()
    return int(code), float(wall), int(rss) / 1024, out.stdout.split("\n", 1)[1]


def write_feed_file(path: Path, gigabytes: float, n_tracks: int = 2000) -> int:
    """A Forewarn JSON array of ``n_tracks`` aircraft reporting once a second near 35 N 38 E, about ``gigabytes``
    GB (written as a stream); returns the number of positions."""
    rng = np.random.default_rng(11)
    lat0, lon0 = rng.uniform(33.5, 36.5, n_tracks), rng.uniform(36.0, 40.0, n_tracks)
    trk, gs = rng.uniform(0, 360, n_tracks), rng.uniform(200, 250, n_tracks)
    written = count = second = 0
    with open(path, "w", encoding="utf-8") as out:
        out.write("[")
        while written < gigabytes * 1e9:
            dt = float(second)
            lat = lat0 + gs * dt * np.cos(np.radians(trk)) / M_PER_DEG_LAT
            lon = lon0 + gs * dt * np.sin(np.radians(trk)) / (M_PER_DEG_LAT * np.cos(np.radians(lat0)))
            text = ",".join(
                f'{{"track_id":"e{k:05d}","t_s":{T0.timestamp() + dt},"lat_deg":{lat[k]:.6f},"lon_deg":{lon[k]:.6f},'
                f'"alt_m":9000.0,"gs_mps":{gs[k]:.1f},"track_deg":{trk[k]:.1f},"vs_mps":0.0,"callsign":"C{k:05d}"}}'
                for k in range(n_tracks))
            out.write(("," if count else "") + text)
            written += len(text) + 1
            count += n_tracks
            second += 1
        out.write("]")
    return count


def streaming(gigabytes: float) -> dict[str, Any]:
    """Peak RSS and rate of ``forewarn replay`` on a generated file, and of the refused 48 MB HTTP body."""
    with tempfile.TemporaryDirectory() as tmp:
        feed_file, db = Path(tmp) / "feed.json", Path(tmp) / "replay.sqlite"
        n = write_feed_file(feed_file, gigabytes)
        size = feed_file.stat().st_size
        subprocess.run([sys.executable, "-m", "forewarn", "demo", "--db", str(db), "--out", str(Path(tmp) / "o")],
                       capture_output=True, check=True)
        code, wall, rss, tail = measured(sys.executable, "-m", "forewarn", "replay", str(feed_file), "--party",
                                         "coalition", "--speed", "0", "--step", "10", "--db", str(db))
        if code != 0:
            raise SystemExit(f"replay failed: {tail}")
    _http_code, http_wall, http_rss, http_tail = measured(sys.executable, "-c", HTTP_CHILD)
    return {"file_bytes": size, "positions": n, "replay_s": round(wall, 1), "replay_per_s": round(n / wall),
            "replay_peak_rss_mib": round(rss), "http_body_refused": "refused" in http_tail,
            "http_s": round(http_wall, 2), "http_peak_rss_mib": round(http_rss)}


def write_streaming(result: dict[str, Any], command: str) -> None:
    host = host_info({"numpy": np.__version__})
    lines = [
        "## Streaming feeds (bench/ingest.py --stream-gb)", "",
        f"`{command}` at {git('rev-parse', '--short', 'HEAD')}, {host['date']}; {host['cpu']}, {host['nproc']} "
        f"cores shared with other jobs (load average {', '.join(f'{x:.1f}' for x in os.getloadavg())} at the end).",
        "",
        f"* `forewarn replay` of a generated Forewarn JSON array of {result['file_bytes'] / 1e9:.2f} GB "
        f"({result['positions']:,} positions, 2,000 aircraft, one report a second; `--speed 0 --step 10`, the "
        f"whole tracker with storage): peak RSS **{result['replay_peak_rss_mib']} MiB** (target < 300 MB; before "
        f"the streaming parsers: 3.4 GB for a 1 GB file), {result['replay_s']} s wall, "
        f"{result['replay_per_s']:,} positions/s end to end (reading, sorting runs on disk, merging, ingest).",
        f"* The issue-20 body of 16 million empty objects (48 MB) through the positions route's parser with the "
        f"default row limit: refused={result['http_body_refused']}, {result['http_s']} s, peak RSS "
        f"**{result['http_peak_rss_mib']} MiB** including the 48 MB body (before: 118 s and 15 GB).",
    ]
    write_section(BENCH_DIR / "RESULTS.md", lines[0], "\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tracks", type=int, default=2000)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--batch", default="1000,10000,50000")
    parser.add_argument("--stream-gb", type=float, default=0.0,
                        help="only the streaming phase: replay a generated file of this many GB (e.g. 1.0)")
    args = parser.parse_args()
    if args.stream_gb:
        result = streaming(args.stream_gb)
        print(json.dumps(result))
        write_streaming(result, "python bench/ingest.py " + " ".join(sys.argv[1:]))
        return
    results = []
    for size in (int(x) for x in args.batch.split(",")):
        r = run(args.tracks, args.seconds, size)
        print(json.dumps(r))
        results.append(r)
    write_results(results, "python bench/ingest.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
