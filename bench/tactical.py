"""Tactical conflict prediction benchmark: one full detection pass over N live tracks (forewarn.tracks.cpa).

Two workloads, both centred on 35N 38E (positions drawn uniformly in a square of a local azimuthal-equidistant
projection), altitudes uniform in FL100-FL400, ground speeds uniform in 200-500 kt, tracks uniform, 30 % of the
aircraft climbing or descending at 1,000-3,000 ft/min; minima 5 NM / 1,000 ft; look-ahead 300 s; every aircraft its
own party (so every pair is checked, as BlueSky does):

* ``dense``: BlueSky's dense box, 500 km x 500 km whatever N (density grows with N);
* ``constant``: constant density, that of the 1k dense case (1,000 aircraft per 500 km x 500 km): the square's
  side grows as 500 km x sqrt(N / 1000), 5,000 km at 100k.

For each N: Forewarn ``predict_conflicts`` in its two models (``geodesic``, the default, and ``bluesky``, the
BlueSky-compatible flat-earth mode), BlueSky 1.1.1's NumPy detector ``StateBased.detect`` (N x N matrices: run up
to --numpy-max) and its C++ twin ``cstatebased.detect`` (O(N^2) time, O(conflicts) memory: run up to --cpp-max) on
the same arrays. Reported: median and best wall time of the passes, median CPU time of the process (the machine is
shared: CPU time is less disturbed by other processes than wall time), peak memory of one extra pass (RSS growth
sampled every 2 ms; for Forewarn also tracemalloc's peak of Python/NumPy allocations), conflicting pairs, and
whether Forewarn's bluesky mode found exactly BlueSky's pairs. Results go to ``bench/results/tactical.json`` and
the "Tactical" section of ``bench/RESULTS.md``.

Command: ``python bench/tactical.py`` (options: --help).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pyproj

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCH_DIR, git, host_info, write_section
from forewarn.tracks.cpa import DEFAULT_MINIMA, TrackVectors, predict_conflicts

SECTION_TITLE = "## Tactical (bench/tactical.py)"
DEFAULT_JSON = BENCH_DIR / "results" / "tactical.json"
DEFAULT_MD = BENCH_DIR / "RESULTS.md"
KT = 0.514444
FT = 0.3048
FPM = 0.00508
LOOKAHEAD_S = 300.0
CENTRE = (35.0, 38.0)


def traffic(n: int, side_m: float, seed: int) -> TrackVectors:
    """N aircraft in a side_m x side_m square (local AEQD around CENTRE); see the module docstring."""
    rng = np.random.default_rng(seed)
    to_geo = pyproj.Transformer.from_crs(f"+proj=aeqd +lat_0={CENTRE[0]} +lon_0={CENTRE[1]} +ellps=WGS84",
                                         "EPSG:4326", always_xy=True)
    lon, lat = to_geo.transform(rng.uniform(-side_m / 2, side_m / 2, n), rng.uniform(-side_m / 2, side_m / 2, n))
    climbing = rng.random(n) < 0.3
    vs = np.where(climbing, rng.choice([-1.0, 1.0], n) * rng.uniform(1000, 3000, n) * FPM, 0.0)
    return TrackVectors.from_arrays(np.asarray(lat), np.asarray(lon), rng.uniform(10_000, 40_000, n) * FT,
                                  rng.uniform(200, 500, n) * KT, rng.uniform(0, 360, n), vs)


def side_of(workload: str, n: int) -> float:
    return 500_000.0 if workload == "dense" else 500_000.0 * (n / 1000) ** 0.5


# ---------------------------------------------------------------------------------------------- engines


def bluesky_traffic(state: TrackVectors) -> SimpleNamespace:
    n = len(state)
    trk = np.radians(state.track_deg)
    return SimpleNamespace(lat=state.lat_deg, lon=state.lon_deg, trk=state.track_deg, gs=state.gs_mps,
                           gseast=state.gs_mps * np.sin(trk), gsnorth=state.gs_mps * np.cos(trk), alt=state.alt_m,
                           vs=state.vs_mps, ntraf=n, id=list(range(n)))


def bluesky_numpy(state: TrackVectors) -> Callable[[], set[tuple[int, int]]]:
    from bluesky.traffic.asas.statebased import StateBased  # type: ignore[import-untyped]

    own = bluesky_traffic(state)

    def run() -> set[tuple[int, int]]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # np.matrix
            out = StateBased.detect(None, own, own, DEFAULT_MINIMA.horizontal_m, DEFAULT_MINIMA.vertical_m,
                                    LOOKAHEAD_S)
        return {(a, b) for a, b in out[0] if a < b}

    return run


def bluesky_cpp(state: TrackVectors) -> Callable[[], set[tuple[int, int]]]:
    from bluesky.traffic.asas import cstatebased  # type: ignore[import-untyped]

    own = bluesky_traffic(state)
    n = len(state)
    rpz = np.full(n, DEFAULT_MINIMA.horizontal_m)
    hpz = np.full(n, DEFAULT_MINIMA.vertical_m)
    look = np.full(n, LOOKAHEAD_S)

    def run() -> set[tuple[int, int]]:
        out = cstatebased.detect(own, own, rpz, hpz, look)
        return {(a, b) for a, b in out[0] if a < b}

    return run


def forewarn(state: TrackVectors, model: Any) -> Callable[[], set[tuple[int, int]]]:
    def run() -> set[tuple[int, int]]:
        r = predict_conflicts(state, DEFAULT_MINIMA, lookahead_s=LOOKAHEAD_S, model=model)
        return set(zip(r.i.tolist(), r.j.tolist(), strict=True))

    return run


def forewarn_pass(state: TrackVectors, model: Any) -> Callable[[], int]:
    """The timed call itself: the columnar result, no Python set."""
    def run() -> int:
        return len(predict_conflicts(state, DEFAULT_MINIMA, lookahead_s=LOOKAHEAD_S, model=model))

    return run


# ---------------------------------------------------------------------------------------------- measuring


def _rss() -> int:
    with open("/proc/self/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@contextlib.contextmanager
def rss_peak() -> Iterator[dict[str, int]]:
    """Peak RSS growth (bytes) over the block, sampled every 2 ms by a thread."""
    out = {"peak": 0}
    base = _rss()
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            out["peak"] = max(out["peak"], _rss() - base)
            time.sleep(0.002)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    try:
        yield out
    finally:
        stop.set()
        th.join()
        out["peak"] = max(out["peak"], _rss() - base)


def timed(fn: Callable[[], Any], passes: int) -> dict[str, Any]:
    walls, cpus = [], []
    for _ in range(passes):
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return {"passes": passes, "wall_median_s": statistics.median(walls), "wall_min_s": min(walls),
            "cpu_median_s": statistics.median(cpus), "walls_s": walls}


def memory(fn: Callable[[], Any], trace: bool) -> dict[str, Any]:
    gc.collect()
    if trace:
        tracemalloc.start()
    with rss_peak() as rss:
        fn()
    out: dict[str, Any] = {"rss_peak_delta_bytes": rss["peak"]}
    if trace:
        out["tracemalloc_peak_bytes"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return out


def loadavg() -> float:
    return round(os.getloadavg()[0], 2)


# ---------------------------------------------------------------------------------------------- the run


def run_size(workload: str, n: int, args: argparse.Namespace) -> dict[str, Any]:
    state = traffic(n, side_of(workload, n), args.seed + n)
    row: dict[str, Any] = {"workload": workload, "n": n, "side_km": side_of(workload, n) / 1000,
                           "load_before": loadavg()}
    mem = memory_in_child(workload, n, args)
    pairs: dict[str, set[tuple[int, int]]] = {}
    for model in ("geodesic", "bluesky"):
        pairs[model] = forewarn(state, model)()  # warm-up (and numba's cached compilation)
        row[f"forewarn_{model}"] = {**timed(forewarn_pass(state, model), args.passes), **mem[f"forewarn_{model}"],
                                    "pairs": len(pairs[model])}
    if n <= args.numpy_max:
        fn = bluesky_numpy(state)
        pairs["bluesky_numpy"] = fn()
        row["bluesky_numpy"] = {**timed(fn, args.bluesky_passes if n <= 2000 else 1), **mem["bluesky_numpy"],
                                "pairs": len(pairs["bluesky_numpy"])}
    if n <= args.cpp_max:
        fn = bluesky_cpp(state)
        pairs["bluesky_cpp"] = fn()
        row["bluesky_cpp"] = {**timed(fn, args.bluesky_passes if n <= 5000 else 1), **mem["bluesky_cpp"],
                              "pairs": len(pairs["bluesky_cpp"])}
    ref = pairs["bluesky"]
    row["identical_to_bluesky"] = {k: pairs[k] == ref for k in ("bluesky_numpy", "bluesky_cpp") if k in pairs}
    row["bluesky_mismatch_examples"] = {k: sorted(pairs[k] ^ ref)[:10] for k in ("bluesky_numpy", "bluesky_cpp")
                                        if k in pairs and pairs[k] != ref}
    row["geodesic_vs_bluesky_mode"] = {"only_geodesic": len(pairs["geodesic"] - ref),
                                       "only_bluesky": len(ref - pairs["geodesic"])}
    row["load_after"] = loadavg()
    return row


def memory_probe(workload: str, n: int, args: argparse.Namespace) -> dict[str, Any]:
    """Peak memory of one pass of each engine (run in a child process, see memory_in_child)."""
    predict_conflicts(traffic(50, 100_000.0, 1))  # load numba's compiled code before the baseline
    predict_conflicts(traffic(50, 100_000.0, 1), model="bluesky")
    state = traffic(n, side_of(workload, n), args.seed + n)
    out = {f"forewarn_{m}": memory(forewarn_pass(state, m), trace=True) for m in ("geodesic", "bluesky")}
    if n <= args.numpy_max:
        out["bluesky_numpy"] = memory(bluesky_numpy(state), trace=False)
    if n <= args.cpp_max:
        out["bluesky_cpp"] = memory(bluesky_cpp(state), trace=False)
    return out


def memory_in_child(workload: str, n: int, args: argparse.Namespace) -> dict[str, Any]:
    """memory_probe in a fresh process under glibc's fixed mmap threshold (128 KiB): freed arrays go back to the
    OS, so RSS growth shows each pass's peak (in the timing process, glibc keeps freed memory in its heap)."""
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--memory-probe", workload, str(n),
           "--numpy-max", str(args.numpy_max), "--cpp-max", str(args.cpp_max), "--seed", str(args.seed)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def versions() -> dict[str, str]:
    import numba

    out = {"numpy": np.__version__, "numba": numba.__version__, "pyproj": pyproj.__version__}
    try:
        from importlib.metadata import version

        out["bluesky-simulator"] = version("bluesky-simulator")
    except Exception:
        out["bluesky-simulator"] = "absent"
    return out


def source_state() -> dict[str, str]:
    diff = git("diff", "HEAD", "--", "../src/forewarn/tracks")
    return {"commit": git("rev-parse", "--short", "HEAD"),
            "tracks_uncommitted": git("status", "--short", "--", "../src/forewarn/tracks"),
            "tracks_diff_sha256": hashlib.sha256(diff.encode()).hexdigest()[:16] if diff else ""}


# ---------------------------------------------------------------------------------------------- report


def _ms(x: float | None) -> str:
    return "-" if x is None else (f"{x * 1e3:,.1f}" if x < 10 else f"{x * 1e3:,.0f}")


def _mib(b: int | None) -> str:
    return "-" if b is None else f"{b / 2**20:,.0f}"


def _n(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def verdict(doc: dict[str, Any]) -> str:
    rows = {(r["workload"], r["n"]): r for r in doc["rows"]}
    parts = ["Targets (one pass, Forewarn geodesic model):"]
    for key, label, limit in ((("dense", 10_000), "10k dense within 100 ms", 0.1),
                              (("constant", 100_000), "100k constant density within 1 s", 1.0)):
        r = rows.get(key)
        if r is None:
            parts.append(f"{label}: not run;")
            continue
        f = r["forewarn_geodesic"]
        met = "met" if f["wall_median_s"] <= limit else ("met in CPU time only" if f["cpu_median_s"] <= limit
                                                         else "missed")
        parts.append(f"{label}: {_ms(f['wall_median_s'])} ms wall median, {_ms(f['cpu_median_s'])} ms CPU ({met});")
    peak = max(max(r[f"forewarn_{m}"]["rss_peak_delta_bytes"], r[f"forewarn_{m}"]["tracemalloc_peak_bytes"])
               for r in doc["rows"] for m in ("geodesic", "bluesky"))
    parts.append(f"memory under 1 GB: largest peak {_mib(peak)} MiB ({'met' if peak < 2**30 else 'missed'}).")
    checked = [(r, k) for r in doc["rows"] for k in r["identical_to_bluesky"]]
    bad = [(r, k) for r, k in checked if not r["identical_to_bluesky"][k]]
    if not checked:
        parts.append("BlueSky did not run: pairs not compared.")
    elif not bad:
        parts.append(f"Forewarn's bluesky mode found exactly BlueSky's pairs in all {len(checked)} comparisons "
                     "(NumPy and C++ detectors, every size they ran).")
    else:
        parts.append("Pairs DIFFER from BlueSky in: " + ", ".join(f"{r['workload']} {_n(r['n'])} {k}"
                                                                  for r, k in bad) + " (examples in the JSON).")
    return " ".join(parts)


def speedups(doc: dict[str, Any]) -> str:
    """Wall-time ratios BlueSky / Forewarn's bluesky mode (the same pairs), at the largest N each BlueSky ran."""
    parts = []
    for workload in dict.fromkeys(r["workload"] for r in doc["rows"]):
        rows = [r for r in doc["rows"] if r["workload"] == workload]
        for key, label in (("bluesky_numpy", "NumPy"), ("bluesky_cpp", "C++")):
            ran = [r for r in rows if key in r]
            if ran:
                r = max(ran, key=lambda r: r["n"])
                ratio = r[key]["wall_median_s"] / r["forewarn_bluesky"]["wall_median_s"]
                parts.append(f"{workload} {_n(r['n'])}: {ratio:,.0f}x BlueSky {label}")
    return ("Speed-up of Forewarn's bluesky mode over BlueSky on the same inputs and pairs (wall time, median): "
            + "; ".join(parts) + ".") if parts else ""


def markdown(doc: dict[str, Any]) -> str:
    h = doc["host"]
    src = doc["source"]
    lines = [
        SECTION_TITLE, "",
        f"Command: `{doc['command']}` (commit {src['commit']}"
        + (f", uncommitted changes in src/forewarn/tracks: {src['tracks_uncommitted']}" if src["tracks_uncommitted"]
           else "") + f", {h['date']}; the whole run took {doc['elapsed_s']:.0f} s).", "",
        f"Machine: {h['cpu']}, {h['nproc']} cores, {h['memory_gib']} GiB RAM; Python {h['python']}; "
        f"`{h['uname']}`; " + ", ".join(f"{k} {v}" for k, v in h["versions"].items())
        + f". Shared with other agents: load average (1 min) {doc['load_start']} at the start, "
        f"{doc['load_end']} at the end (per size in the JSON).", "",
        "Workloads (module docstring of bench/tactical.py): centred on 35N 38E, FL100-FL400, 200-500 kt, 30 % "
        "climbing or descending at 1,000-3,000 ft/min, minima 5 NM / 1,000 ft, look-ahead 300 s, every aircraft "
        "its own party. `dense` = BlueSky's 500 km x 500 km box whatever N; `constant` = the density of the 1k "
        "dense case (500 km x sqrt(N/1000) square, 5,000 km at 100k).", "",
        f"One pass = one full detection over all N tracks. Forewarn: median (best) wall time of {doc['passes']} "
        "passes after one warm-up, and median process CPU time; BlueSky NumPy (`StateBased.detect`, N x N matrices) "
        f"up to N = {doc['numpy_max']:,} and BlueSky C++ (`cstatebased.detect`) up to N = {doc['cpp_max']:,}: "
        f"{doc['bluesky_passes']} passes (1 pass above 2k for NumPy, above 5k for C++). "
        "Memory = peak RSS growth "
        "(sampled every 2 ms) of one pass in a separate process run with MALLOC_MMAP_THRESHOLD_=131072 (so that "
        "freed arrays leave RSS); for Forewarn also tracemalloc's peak (Python/NumPy allocations; numba's own "
        "allocations are only in the RSS figure). `pairs` = conflicting pairs; `same` = Forewarn's bluesky mode "
        "found exactly the pairs of BlueSky's NumPy / C++ detector.", "",
        "| workload | N | Forewarn geodesic: wall ms (best) | CPU ms | peak MiB (RSS / traced) | pairs "
        "| Forewarn bluesky mode: wall ms | CPU ms | pairs | BlueSky NumPy: wall ms | peak MiB | BlueSky C++: wall ms "
        "| peak MiB | same as NumPy / C++ | geodesic vs bluesky mode: only geo / only bs | load before / after |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for r in doc["rows"]:
        g, b = r["forewarn_geodesic"], r["forewarn_bluesky"]
        bn, bc = r.get("bluesky_numpy"), r.get("bluesky_cpp")
        same = " / ".join(("yes" if r["identical_to_bluesky"][k] else "NO") if k in r["identical_to_bluesky"]
                          else "-" for k in ("bluesky_numpy", "bluesky_cpp"))
        gv = r["geodesic_vs_bluesky_mode"]
        lines.append(
            f"| {r['workload']} | {_n(r['n'])} | {_ms(g['wall_median_s'])} ({_ms(g['wall_min_s'])}) "
            f"| {_ms(g['cpu_median_s'])} | {_mib(g['rss_peak_delta_bytes'])} / {_mib(g['tracemalloc_peak_bytes'])} "
            f"| {g['pairs']:,} | {_ms(b['wall_median_s'])} ({_ms(b['wall_min_s'])}) | {_ms(b['cpu_median_s'])} "
            f"| {b['pairs']:,} | {_ms(bn['wall_median_s']) if bn else '-'} "
            f"| {_mib(bn['rss_peak_delta_bytes']) if bn else '-'} | {_ms(bc['wall_median_s']) if bc else '-'} "
            f"| {_mib(bc['rss_peak_delta_bytes']) if bc else '-'} | {same} "
            f"| {gv['only_geodesic']:,} / {gv['only_bluesky']:,} | {r['load_before']} / {r['load_after']} |")
    lines += ["", doc["verdict"], "", speedups(doc), "",
              "The geodesic and bluesky-mode pair sets differ by design (WGS84 ellipsoid and meridian convergence vs "
              "BlueSky's 6,371 km sphere and per-pair equirectangular frame): pairs near the 5 NM boundary flip.", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,2000,5000,10000,20000,50000,100000")
    ap.add_argument("--workloads", default="dense,constant")
    ap.add_argument("--passes", type=int, default=7, help="timed Forewarn passes per size and model")
    ap.add_argument("--bluesky-passes", type=int, default=3, help="timed BlueSky passes at small sizes")
    ap.add_argument("--numpy-max", type=int, default=5000, help="largest N for BlueSky's N x N NumPy detector")
    ap.add_argument("--cpp-max", type=int, default=20000, help="largest N for BlueSky's C++ detector")
    ap.add_argument("--seed", type=int, default=20151117)
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON)
    ap.add_argument("--markdown", type=Path, default=DEFAULT_MD)
    ap.add_argument("--no-markdown", action="store_true")
    ap.add_argument("--memory-probe", nargs=2, metavar=("WORKLOAD", "N"), help=argparse.SUPPRESS)
    ap.add_argument("--render", action="store_true", help="only rewrite the RESULTS.md section from --json")
    args = ap.parse_args(argv)
    if args.render:
        write_section(args.markdown, SECTION_TITLE, markdown(json.loads(args.json.read_text(encoding="utf-8"))))
        return 0
    if args.memory_probe:
        print(json.dumps(memory_probe(args.memory_probe[0], int(args.memory_probe[1]), args)))
        return 0
    started = time.perf_counter()
    doc: dict[str, Any] = {
        "command": "python bench/tactical.py" + ("" if argv is None and len(sys.argv) == 1
                                                 else " " + " ".join(sys.argv[1:] if argv is None else argv)),
        "host": host_info(versions()), "source": source_state(), "passes": args.passes,
        "bluesky_passes": args.bluesky_passes, "numpy_max": args.numpy_max, "cpp_max": args.cpp_max,
        "load_start": loadavg(), "rows": [],
    }
    for workload in args.workloads.split(","):
        for n in (int(x) for x in args.sizes.split(",")):
            row = run_size(workload, n, args)
            doc["rows"].append(row)
            g = row["forewarn_geodesic"]
            print(f"{workload:8} {n:>7,}: geodesic {_ms(g['wall_median_s'])} ms (cpu {_ms(g['cpu_median_s'])}), "
                  f"bluesky mode {_ms(row['forewarn_bluesky']['wall_median_s'])} ms, pairs {g['pairs']:,}, "
                  f"BlueSky numpy {_ms(row.get('bluesky_numpy', {}).get('wall_median_s'))} ms, "
                  f"C++ {_ms(row.get('bluesky_cpp', {}).get('wall_median_s'))} ms, "
                  f"same {row['identical_to_bluesky']}, load {row['load_after']}", flush=True)
    doc["load_end"] = loadavg()
    doc["elapsed_s"] = time.perf_counter() - started
    doc["verdict"] = verdict(doc)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
    if not args.no_markdown:
        write_section(args.markdown, SECTION_TITLE, markdown(doc))
    print(doc["verdict"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
