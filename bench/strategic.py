#!/usr/bin/env python
"""Strategic detection benchmark: Forewarn's 4D index vs PostgreSQL + PostGIS vs shapely's STRtree.

Generates N stored volumes (default 10k, 100k and 1M) of plausible operations over a 1,000 km x 1,000 km
region centred on 38E 35N and over 7 days, and 1,000 query operations of 1-5 volumes each. Every query
operation is answered by the three backends in the same run; the script checks that all three return the
same (query volume, stored operation, stored volume) pairs and writes the numbers to
``bench/results/strategic.json`` and to the "Strategic detection" section of ``bench/RESULTS.md``.

    bash bench/setup_postgis.sh                       # once: PostGIS + database forewarn_bench
    python bench/strategic.py --sizes 10000,100000,1000000 --queries 1000

The predicate is the one of :mod:`forewarn.conflicts` with a single agreement binding 20 parties and no
class minima (H metres, V metres, T seconds for every pair):

* time      ``B.start < A.end + T and B.end > A.start - T``
* altitude  ``B.lower < A.upper + V and B.upper > A.lower - V``
* space     B's footprint intersects A's footprint buffered geodesically by H
  (:func:`forewarn.geo.geodesy.geodesic_buffer`), and B belongs to another party.

What each backend's timed query includes: Forewarn, one call of :func:`forewarn.conflicts.detect`
(``measure=False``: geodesic buffer, index lookup, exact tests, Conflict records); PostGIS and STRtree, the
same geodesic buffer of every query volume plus their search. The query footprints themselves
(``volume.shape``) are computed once before timing, for all three.

Generation notes. Times are whole minutes and altitudes multiples of 30 m, so every boundary comparison is
exact in float seconds, in timestamptz microseconds and in numeric. Volumes are built and validated by the
pydantic models (timed separately as "validate"). Footprint shapes are computed once and shared by all three
backends: circles and polygons by a vectorised copy of what ``footprint.shape()`` does, corridors by
``footprint.shape()`` itself in worker processes; each chunk checks a sample of them byte for byte against
``footprint.shape()``. The shapes are then stored in each volume's cached ``shape`` property, so Forewarn's
``put_many`` (its build time) does not recompute them; the cold per-volume cost of the shapes is reported
in "generation".
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import ctypes
import gc
import hashlib
import json
import math
import multiprocessing
import os
import platform
import pstats
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

from forewarn.airspace import AgreementBook, Airspace
from forewarn.conflicts import detect
from forewarn.geo import geodesy
from forewarn.geo.volume import CircleFootprint, CorridorFootprint, PolygonFootprint, Volume4D
from forewarn.model import Agreement, Operation, SeparationMinima

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_JSON = BENCH_DIR / "results" / "strategic.json"
DEFAULT_MD = BENCH_DIR / "RESULTS.md"
SECTION_TITLE = "## Strategic detection (bench/strategic.py)"

T0 = datetime(2025, 6, 2, tzinfo=UTC)
"""Start of the 7-day period (a Monday, 00:00 UTC)."""
T0_S = int(T0.timestamp())
DAYS = 7
CENTRE_LON, CENTRE_LAT = 38.0, 35.0
HALF_KM = 500.0
KM_PER_DEG_LAT = 110.574
KM_PER_DEG_LON_EQ = 111.320
N_PARTIES = 20
CHUNK = 10_000
"""Stored volumes are generated in chunks of this many volumes; each size is a prefix of the chunks."""
WARMUP = 20
"""Query operations run once, untimed, before each backend's timed pass."""
TABLE = "bench_strategic_volumes"

CIRCLE, POLYGON, CORRIDOR = 0, 1, 2
KIND_NAMES = ("circle", "polygon", "corridor")

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class ClassSpec:
    """How one activity class looks: footprint kinds, size across (km), altitudes (m), window (min)."""

    name: str
    weight: float
    kinds: tuple[float, float, float]  # probability of circle, polygon, corridor
    size_km: tuple[float, float]
    lower_m: tuple[float, float]
    thick_m: tuple[float, float]
    minutes: tuple[float, float]
    half_width_m: tuple[float, float] = (0.0, 0.0)  # corridors only
    points: tuple[int, int] = (2, 2)  # corridor vertices, inclusive


CLASSES: tuple[ClassSpec, ...] = (
    ClassSpec("drone", 0.27, (0.6, 0.4, 0.0), (1, 8), (0, 300), (120, 1500), (10, 240)),
    ClassSpec("isr_orbit", 0.17, (1.0, 0.0, 0.0), (10, 30), (3000, 7500), (600, 3000), (120, 360)),
    ClassSpec("strike_area", 0.15, (0.2, 0.8, 0.0), (3, 25), (0, 0), (4500, 12000), (10, 120)),
    ClassSpec("artillery_area", 0.09, (0.4, 0.6, 0.0), (5, 25), (0, 0), (3000, 9000), (30, 240)),
    ClassSpec("training_area", 0.09, (0.3, 0.7, 0.0), (10, 30), (1500, 6000), (1500, 4500), (60, 300)),
    ClassSpec("transport", 0.09, (0, 0, 1), (8, 30), (1500, 10000), (300, 1200), (30, 240), (1000, 3000), (2, 4)),
    ClassSpec("tanker_track", 0.05, (0, 0, 1), (15, 30), (6000, 9000), (600, 1500), (120, 360), (2000, 5000)),
    ClassSpec("bomber_route", 0.05, (0, 0, 1), (15, 30), (7500, 12000), (600, 2400), (30, 240), (3000, 5000),
              (2, 4)),
    ClassSpec("cruise_missile_corridor", 0.04, (0, 0, 1), (10, 30), (0, 60), (150, 600), (10, 45), (500, 2000),
              (2, 3)),
)
CLASS_P = np.array([c.weight for c in CLASSES]) / sum(c.weight for c in CLASSES)
STORED_NVOL_P = np.array([0.40, 0.25, 0.15, 0.10, 0.10])
QUERY_NVOL_P = np.full(5, 0.2)


# ---------------------------------------------------------------------------------------------- memory
def _proc_status(key: str, pid: int | str = "self") -> int:
    """A ``/proc/<pid>/status`` memory field (e.g. VmRSS, VmHWM) in bytes; 0 when unreadable."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0


def rss() -> int:
    return _proc_status("VmRSS")


def peak_rss() -> int:
    return _proc_status("VmHWM")


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0, ``clear_refs`` value 5)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def trim_memory() -> None:
    """Collect garbage and give freed heap back to the OS, so RSS deltas mean what they say."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def mib(n: float) -> float:
    return round(n / 2**20, 1)


# ---------------------------------------------------------------------------------------------- generation
@dataclass(frozen=True)
class World:
    """What every chunk and the queries share: parties and activity hot spots."""

    parties: list[str]
    party_p: FloatArray
    hot_xy: FloatArray
    hot_sigma: FloatArray
    hot_p: FloatArray
    hot_share: float = 0.6

    @classmethod
    def make(cls, seed: int) -> World:
        rng = np.random.default_rng([seed, 0])
        weights = 1.0 / np.arange(1, N_PARTIES + 1) ** 0.7
        k = 40
        hot_p = rng.dirichlet(np.full(k, 1.5))
        return cls(
            parties=[f"party-{i:02d}" for i in range(N_PARTIES)],
            party_p=weights / weights.sum(),
            hot_xy=rng.uniform(-0.8 * HALF_KM, 0.8 * HALF_KM, size=(k, 2)),
            hot_sigma=rng.uniform(25.0, 90.0, size=k),
            hot_p=hot_p,
        )


@dataclass
class Chunk:
    """Generated operations and, per volume (row), the columns the baselines need."""

    ops: list[Operation]
    op_ids: list[str]
    op_of: IntArray  # row -> index in ops
    vol_j: IntArray  # row -> volume index in its operation
    party: IntArray
    lower: FloatArray
    upper: FloatArray
    start_s: FloatArray
    end_s: FloatArray
    kind: IntArray
    shapes: NDArray[np.object_]
    timings: dict[str, float] = field(default_factory=dict)
    checked: int = 0


def _loguniform(rng: np.random.Generator, lo: FloatArray, hi: FloatArray) -> FloatArray:
    lo = np.maximum(lo, 1e-9)
    return np.asarray(np.exp(rng.uniform(np.log(lo), np.log(np.maximum(hi, lo)))))


def _to_lonlat(x_km: FloatArray, y_km: FloatArray, lat0: FloatArray | float, lon0: FloatArray | float
               ) -> tuple[FloatArray, FloatArray]:
    lat = lat0 + y_km / KM_PER_DEG_LAT
    lon = lon0 + x_km / (KM_PER_DEG_LON_EQ * np.cos(np.radians(lat0)))
    return np.asarray(lon), np.asarray(lat)


def _corridor_wkb(items: list[tuple[list[tuple[float, float]], float]]) -> list[bytes]:
    """Worker: the corridor shapes exactly as ``CorridorFootprint.shape()`` builds them, as WKB."""
    return [shapely.to_wkb(geodesy.geodesic_corridor(path, hw)) for path, hw in items]


def _split_points(coords: FloatArray, counts: IntArray) -> list[list[tuple[float, float]]]:
    if len(counts) == 0:
        return []
    return [[(x, y) for x, y in part.tolist()] for part in np.split(coords, np.cumsum(counts)[:-1])]


def circle_shapes(lon: FloatArray, lat: FloatArray, radius: FloatArray) -> NDArray[np.object_]:
    """Vectorised :func:`geodesy.geodesic_circle` (same vertex counts, azimuths and ``GEOD.fwd`` calls)."""
    out = np.empty(len(lon), dtype=object)
    counts = np.array([geodesy.arc_vertex_count(float(r)) for r in radius], dtype=np.int64)
    for c in np.unique(counts).tolist():
        sel = np.flatnonzero(counts == c)
        m = len(sel)
        az = np.linspace(360.0, 0.0, c, endpoint=False)
        lons, lats, _ = geodesy.GEOD.fwd(np.repeat(lon[sel], c), np.repeat(lat[sel], c), np.tile(az, m),
                                         np.repeat(radius[sel], c))
        ring = np.stack([np.asarray(lons).reshape(m, c), np.asarray(lats).reshape(m, c)], axis=-1)
        ring = np.concatenate([ring, ring[:, :1]], axis=1)
        out[sel] = shapely.polygons(ring)
    return out


def polygon_shapes(coords: FloatArray, counts: IntArray) -> NDArray[np.object_]:
    """Vectorised ``PolygonFootprint.shape()``: the ring closed on its first vertex."""
    rings = shapely.linearrings(coords, indices=np.repeat(np.arange(len(counts)), counts))
    return np.asarray(shapely.polygons(rings), dtype=object)


def generate_chunk(
    world: World, rng: np.random.Generator, n_volumes: int, prefix: str, nvol_p: FloatArray,
    pool: Any | None, check: int = 10,
) -> Chunk:
    """``n_volumes`` volumes grouped in operations of 1-5 volumes (ids ``{prefix}-{n:05d}``)."""
    t_start = time.perf_counter()
    nv = rng.choice(5, size=n_volumes, p=nvol_p) + 1
    cum = np.cumsum(nv)
    n_ops = int(np.searchsorted(cum, n_volumes)) + 1
    nv = nv[:n_ops]
    nv[-1] -= int(cum[n_ops - 1]) - n_volumes
    cls = rng.choice(len(CLASSES), size=n_ops, p=CLASS_P)
    party = rng.choice(N_PARTIES, size=n_ops, p=world.party_p)
    hot = rng.random(n_ops) < world.hot_share
    spot = rng.choice(len(world.hot_p), size=n_ops, p=world.hot_p)
    anchor = np.where(
        hot[:, None],
        world.hot_xy[spot] + rng.normal(size=(n_ops, 2)) * world.hot_sigma[spot][:, None],
        rng.uniform(-HALF_KM, HALF_KM, size=(n_ops, 2)),
    )
    heading = rng.uniform(0, 2 * np.pi, n_ops)
    step_km = rng.uniform(5.0, 25.0, n_ops)
    stagger_min = rng.integers(0, 91, n_ops)
    op_start_min = rng.integers(0, DAYS * 1440 - 360 - 4 * 90, n_ops)

    n = n_volumes
    op_of = np.repeat(np.arange(n_ops), nv)
    first = np.repeat(np.cumsum(nv) - nv, nv)
    vol_j = np.arange(n) - first
    vcls = cls[op_of]
    spec_arr = {  # per-volume class parameters
        name: np.array([getattr(c, name) for c in CLASSES], dtype=float)[vcls]
        for name in ("size_km", "lower_m", "thick_m", "minutes", "half_width_m")
    }
    kinds_p = np.array([c.kinds for c in CLASSES])[vcls]
    cum_p = np.cumsum(kinds_p, axis=1)
    cum_p[:, 1] = np.where(kinds_p[:, 2] == 0, 1.0, cum_p[:, 1])  # no float round-off into corridors
    u = rng.random(n)
    kind = (u > cum_p[:, 0]).astype(np.int64) + (u > cum_p[:, 1])

    xy = anchor[op_of] + vol_j[:, None] * step_km[op_of][:, None] * np.column_stack(
        [np.cos(heading[op_of]), np.sin(heading[op_of])]
    ) + rng.normal(scale=3.0, size=(n, 2))
    xy = np.clip(xy, -HALF_KM + 20, HALF_KM - 20)
    clon, clat = _to_lonlat(xy[:, 0], xy[:, 1], CENTRE_LAT, CENTRE_LON)
    size = _loguniform(rng, spec_arr["size_km"][:, 0], spec_arr["size_km"][:, 1])
    lower = np.round(rng.uniform(spec_arr["lower_m"][:, 0], spec_arr["lower_m"][:, 1]) / 30.0) * 30.0
    thick = np.maximum(30.0, np.round(rng.uniform(spec_arr["thick_m"][:, 0], spec_arr["thick_m"][:, 1]) / 30) * 30)
    upper = np.minimum(lower + thick, 15_000.0)
    minutes = np.clip(np.round(_loguniform(rng, spec_arr["minutes"][:, 0], spec_arr["minutes"][:, 1])), 10, 360)
    start_s = (T0_S + 60 * (op_start_min[op_of] + vol_j * stagger_min[op_of])).astype(np.float64)
    end_s = start_s + 60.0 * minutes

    # ---- footprints
    is_circle, is_poly, is_corr = (np.flatnonzero(kind == k) for k in (CIRCLE, POLYGON, CORRIDOR))
    radius = np.maximum(500.0, np.round(size[is_circle] * 500.0))
    clon_r, clat_r = np.round(clon, 5), np.round(clat, 5)

    nvert = rng.integers(4, 11, len(is_poly))
    pv_of = np.repeat(np.arange(len(is_poly)), nvert)
    pv_k = np.arange(len(pv_of)) - np.repeat(np.cumsum(nvert) - nvert, nvert)
    theta0 = rng.uniform(0, 2 * np.pi, len(is_poly))
    ang = theta0[pv_of] + 2 * np.pi * (pv_k + rng.uniform(-0.3, 0.3, len(pv_of))) / nvert[pv_of]
    rad_km = size[is_poly][pv_of] / 2.0 * rng.uniform(0.55, 1.0, len(pv_of))
    plon, plat = _to_lonlat(rad_km * np.cos(ang), rad_km * np.sin(ang), clat[is_poly][pv_of], clon[is_poly][pv_of])
    pcoords = np.round(np.column_stack([plon, plat]), 5)

    hw = np.round(rng.uniform(spec_arr["half_width_m"][is_corr, 0], spec_arr["half_width_m"][is_corr, 1]) / 10) * 10
    pts_lo = np.array([c.points[0] for c in CLASSES])[vcls[is_corr]]
    pts_hi = np.array([c.points[1] for c in CLASSES])[vcls[is_corr]]
    npts = rng.integers(pts_lo, pts_hi + 1)
    length_km = np.maximum(size[is_corr] - 2 * hw / 1000.0, 1.0)
    cv_of = np.repeat(np.arange(len(is_corr)), npts)
    cv_k = np.arange(len(cv_of)) - np.repeat(np.cumsum(npts) - npts, npts)
    h0 = rng.uniform(0, 2 * np.pi, len(is_corr))
    turn = rng.normal(scale=0.4, size=len(cv_of))
    turn[cv_k == 0] = 0.0
    seg_heading = h0[cv_of] + np.cumsum(turn) - np.repeat(np.cumsum(turn)[np.cumsum(npts) - npts], npts)
    seg = np.where(cv_k[:, None] == 0, 0.0, (length_km / np.maximum(npts - 1, 1))[cv_of][:, None]
                   * np.column_stack([np.cos(seg_heading), np.sin(seg_heading)]))
    off = np.cumsum(seg, axis=0)
    off -= np.repeat(off[np.cumsum(npts) - npts], npts, axis=0)  # restart at each corridor
    off -= (length_km / 2.0)[cv_of][:, None] * np.column_stack([np.cos(h0[cv_of]), np.sin(h0[cv_of])])
    corr_lon, corr_lat = _to_lonlat(off[:, 0], off[:, 1], clat[is_corr][cv_of], clon[is_corr][cv_of])
    ccoords = np.round(np.column_stack([corr_lon, corr_lat]), 5)
    corr_paths = _split_points(ccoords, npts)
    poly_rings = _split_points(pcoords, nvert)
    hw_list, radius_list = hw.tolist(), radius.tolist()
    clon_list, clat_list = clon_r.tolist(), clat_r.tolist()
    t_params = time.perf_counter()

    # corridors: footprint.shape() itself, in worker processes, while this process builds the models
    items = list(zip(corr_paths, hw_list, strict=True))
    pending = None
    if pool is not None and items:
        per = max(1, math.ceil(len(items) / 8))
        pending = pool.map_async(_corridor_wkb, [items[i:i + per] for i in range(0, len(items), per)])

    # ---- models (pydantic validation)
    t0 = time.perf_counter()
    fps: list[Any] = [None] * n
    for k, v in enumerate(is_circle.tolist()):
        fps[v] = CircleFootprint(center=(clon_list[v], clat_list[v]), radius_m=radius_list[k])
    for k, v in enumerate(is_poly.tolist()):
        fps[v] = PolygonFootprint(coordinates=poly_rings[k])
    for k, v in enumerate(is_corr.tolist()):
        fps[v] = CorridorFootprint(path=corr_paths[k], half_width_m=hw_list[k])
    lo_l, up_l, st_l, en_l = lower.tolist(), upper.tolist(), start_s.tolist(), end_s.tolist()
    vols = [
        Volume4D(footprint=fps[v], lower_m=lo_l[v], upper_m=up_l[v],
                 start=datetime.fromtimestamp(st_l[v], tz=UTC), end=datetime.fromtimestamp(en_l[v], tz=UTC))
        for v in range(n)
    ]
    bounds = np.concatenate([[0], np.cumsum(nv)]).tolist()
    notified = T0 - timedelta(days=1)
    op_ids = [f"{prefix}-{o:05d}" for o in range(n_ops)]
    ops = [
        Operation(id=op_ids[o], party_id=world.parties[party[o]], activity_class=CLASSES[cls[o]].name,
                  state="notified", notified_at=notified, volumes=vols[bounds[o]:bounds[o + 1]])
        for o in range(n_ops)
    ]
    t_validate = time.perf_counter() - t0

    # ---- shapes
    t0 = time.perf_counter()
    shapes = np.empty(n, dtype=object)
    shapes[is_circle] = circle_shapes(clon_r[is_circle], clat_r[is_circle], radius)
    shapes[is_poly] = polygon_shapes(pcoords, nvert)
    t_shapes = time.perf_counter() - t0
    t0 = time.perf_counter()
    if items:
        wkbs = [w for part in pending.get() for w in part] if pending is not None else _corridor_wkb(items)
        shapes[is_corr] = shapely.from_wkb(np.asarray(wkbs, dtype=object))
    t_corr_wait = time.perf_counter() - t0
    for v, vol in enumerate(vols):
        vol.__dict__["shape"] = shapes[v]  # the cached_property's slot: put_many will not recompute it

    # ---- a sample of the shapes, byte for byte against footprint.shape()
    t0 = time.perf_counter()
    checked = 0
    for sel in (is_circle, is_poly, is_corr):
        for v in rng.choice(sel, size=min(check, len(sel)), replace=False).tolist():
            if vols[v].footprint.shape().wkb != shapes[v].wkb:
                raise AssertionError(f"fast-path shape of {KIND_NAMES[kind[v]]} volume {v} differs")
            checked += 1
    t_check = time.perf_counter() - t0
    return Chunk(
        ops=ops, op_ids=op_ids, op_of=op_of, vol_j=vol_j, party=party[op_of], lower=lower, upper=upper,
        start_s=start_s, end_s=end_s, kind=kind, shapes=shapes, checked=checked,
        timings={"params_s": t_params - t_start, "validate_s": t_validate, "shapes_vectorised_s": t_shapes,
                 "corridor_wait_s": t_corr_wait, "shape_check_s": t_check,
                 "total_s": time.perf_counter() - t_start},
    )


@dataclass
class Stored:
    """The first N generated volumes as one table: operations plus row columns."""

    ops: list[Operation]
    row_op: NDArray[np.object_]
    vol_j: IntArray
    party: IntArray
    lower: FloatArray
    upper: FloatArray
    start_s: FloatArray
    end_s: FloatArray
    kind: IntArray
    shapes: NDArray[np.object_]

    @classmethod
    def of(cls, chunks: Sequence[Chunk]) -> Stored:
        return cls(
            ops=[op for c in chunks for op in c.ops],
            row_op=np.concatenate([np.asarray(c.op_ids, dtype=object)[c.op_of] for c in chunks]),
            vol_j=np.concatenate([c.vol_j for c in chunks]),
            party=np.concatenate([c.party for c in chunks]),
            lower=np.concatenate([c.lower for c in chunks]),
            upper=np.concatenate([c.upper for c in chunks]),
            start_s=np.concatenate([c.start_s for c in chunks]),
            end_s=np.concatenate([c.end_s for c in chunks]),
            kind=np.concatenate([c.kind for c in chunks]),
            shapes=np.concatenate([c.shapes for c in chunks]),
        )

    def __len__(self) -> int:
        return len(self.shapes)


class Dataset:
    """Chunks generated on demand; size N = the first N // CHUNK chunks (+ a remainder chunk)."""

    def __init__(self, world: World, seed: int, pool: Any | None) -> None:
        self.world, self.seed, self.pool = world, seed, pool
        self.full: list[Chunk] = []
        self.rest: dict[tuple[int, int], Chunk] = {}

    def chunks(self, n: int) -> tuple[list[Chunk], list[Chunk]]:
        """(all chunks of the first n volumes, those generated by this call)."""
        count, rem = divmod(n, CHUNK)
        new: list[Chunk] = []
        while len(self.full) < count:
            k = len(self.full)
            rng = np.random.default_rng([self.seed, 1, k])
            self.full.append(generate_chunk(self.world, rng, CHUNK, f"s{k:03d}", STORED_NVOL_P, self.pool))
            new.append(self.full[-1])
        out = list(self.full[:count])
        if rem:
            if (count, rem) not in self.rest:
                rng = np.random.default_rng([self.seed, 2, count, rem])
                self.rest[(count, rem)] = generate_chunk(self.world, rng, rem, f"r{count:03d}", STORED_NVOL_P,
                                                         self.pool)
                new.append(self.rest[(count, rem)])
            out.append(self.rest[(count, rem)])
        return out, new


def make_queries(world: World, seed: int, count: int) -> list[Operation]:
    """``count`` query operations of 1-5 volumes (uniform), footprints computed the ordinary way."""
    rng = np.random.default_rng([seed, 3])
    ops: list[Operation] = []
    while len(ops) < count:
        chunk = generate_chunk(world, rng, 3 * (count - len(ops)) + 5, f"q{len(ops):05d}", QUERY_NVOL_P, None,
                               check=0)
        ops.extend(chunk.ops)
    ops = ops[:count]
    fresh = []
    for i, op in enumerate(ops):  # rebuild so that each volume computes its own shape (no injected cache)
        vols = [Volume4D(footprint=v.footprint, lower_m=v.lower_m, upper_m=v.upper_m, start=v.start, end=v.end)
                for v in op.volumes]
        fresh.append(op.model_copy(update={"id": f"q-{i:05d}", "volumes": vols}))
    for op in fresh:
        for v in op.volumes:
            _ = v.shape
    return fresh


# ---------------------------------------------------------------------------------------------- backends
Pair = tuple[int, str, int]  # (query volume index, stored operation id, stored volume index)


@dataclass(frozen=True)
class Minima:
    horizontal_m: float
    vertical_m: float
    time_s: float


def latency_stats(lat: Sequence[float], total_s: float) -> dict[str, float]:
    arr = np.asarray(lat) * 1000.0
    return {
        "queries": len(arr),
        "total_s": round(total_s, 4),
        "queries_per_s": round(len(arr) / total_s, 1) if total_s > 0 else 0.0,
        "mean_ms": round(float(arr.mean()), 3),
        "p50_ms": round(float(np.percentile(arr, 50)), 3),
        "p90_ms": round(float(np.percentile(arr, 90)), 3),
        "p99_ms": round(float(np.percentile(arr, 99)), 3),
        "max_ms": round(float(arr.max()), 3),
    }


def run_forewarn(stored: Stored, queries: Sequence[Operation], agreement: Agreement
                 ) -> tuple[dict[str, Any], list[set[Pair]], Airspace]:
    trim_memory()
    before = rss()
    reset_peak()
    air = Airspace(book=AgreementBook([agreement]))
    t0 = time.perf_counter()
    air.put_many(stored.ops)
    build = time.perf_counter() - t0
    build_peak = peak_rss()
    gc.collect()
    after = rss()
    for q in queries[:WARMUP]:
        detect(q, air, measure=False)
    lat: list[float] = []
    raw = []
    t_all = time.perf_counter()
    for q in queries:
        t0 = time.perf_counter()
        found = detect(q, air, measure=False)
        lat.append(time.perf_counter() - t0)
        raw.append(found)
    total = time.perf_counter() - t_all
    pairs = [{(c.a.volume_index, c.b.operation_id, c.b.volume_index) for c in found} for found in raw]
    result = {
        "build_s": round(build, 3),
        "build_what": "Airspace.put_many (footprint shapes already cached on the volumes)",
        "memory": {
            "retained_mib": mib(after - before),
            "build_peak_mib": mib(build_peak - before),
            "index_arrays_mib": mib(air.index.memory_bytes()),
            "what": "RSS growth of this process for put_many (index arrays, key dicts, shape dict); "
                    "operations and shapes are the shared data, see generation.data_rss_mib",
        },
        "cell_deg": air.index.cell_deg,
        **latency_stats(lat, total),
    }
    return result, pairs, air


def run_strtree(stored: Stored, queries: Sequence[Operation], minima: Minima
                ) -> tuple[dict[str, Any], list[set[Pair]]]:
    trim_memory()
    before = rss()
    reset_peak()
    t0 = time.perf_counter()
    tree = shapely.STRtree(stored.shapes)
    tree.query(shapely.box(0.0, 0.0, 0.0, 0.0))  # make sure the tree is built inside the timing
    build = time.perf_counter() - t0
    build_peak = peak_rss()
    after = rss()
    party, lower, upper, start, end = stored.party, stored.lower, stored.upper, stored.start_s, stored.end_s
    h, v, t = minima.horizontal_m, minima.vertical_m, minima.time_s
    party_index = {f"party-{i:02d}": i for i in range(N_PARTIES)}

    def one(q: Operation) -> tuple[list[tuple[int, IntArray]], float]:
        qp = party_index[q.party_id]
        out = []
        t_buf = 0.0
        for i, a in enumerate(q.volumes):
            tb = time.perf_counter()
            buf = geodesy.geodesic_buffer(a.shape, h)
            t_buf += time.perf_counter() - tb
            idx = tree.query(buf, predicate="intersects")
            m = ((party[idx] != qp) & (start[idx] < a.end_s + t) & (end[idx] > a.start_s - t)
                 & (lower[idx] < a.upper_m + v) & (upper[idx] > a.lower_m - v))
            out.append((i, idx[m]))
        return out, t_buf

    for q in queries[:WARMUP]:
        one(q)
    lat: list[float] = []
    buf_lat: list[float] = []
    raw = []
    t_all = time.perf_counter()
    for q in queries:
        t0 = time.perf_counter()
        found, tb = one(q)
        lat.append(time.perf_counter() - t0)
        buf_lat.append(tb)
        raw.append(found)
    total = time.perf_counter() - t_all
    pairs = [{(i, str(stored.row_op[r]), int(stored.vol_j[r])) for i, rows in found for r in rows.tolist()}
             for found in raw]
    result = {
        "build_s": round(build, 3),
        "build_what": "shapely.STRtree(all stored shapes)",
        "memory": {"retained_mib": mib(after - before), "build_peak_mib": mib(build_peak - before),
                   "what": "RSS growth for the tree (shapes and the NumPy columns are shared data)"},
        **latency_stats(lat, total),
        "buffer_only": latency_stats(buf_lat, sum(buf_lat)),
    }
    return result, pairs


def _pg_backend_status(conn: Any) -> dict[str, float]:
    pid = conn.info.backend_pid
    return {"backend_rss_mib": mib(_proc_status("VmRSS", pid)), "backend_peak_rss_mib": mib(_proc_status("VmHWM", pid))}


def run_postgis(stored: Stored, queries: Sequence[Operation], minima: Minima, dsn: str, work_mem: str
                ) -> tuple[dict[str, Any], list[set[Pair]]]:
    import psycopg
    from psycopg.types.range import Range

    h, v, t = minima.horizontal_m, minima.vertical_m, minima.time_s
    party_index = {f"party-{i:02d}": i for i in range(N_PARTIES)}
    conn = psycopg.connect(dsn, autocommit=True)
    try:
        conn.execute(f"SET work_mem = '{work_mem}'")
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute("SET jit = off")
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        conn.execute(
            f"CREATE UNLOGGED TABLE {TABLE} (id int4 NOT NULL, party int4 NOT NULL, "
            "geom geometry(Geometry, 4326) NOT NULL, trange tstzrange NOT NULL, arange numrange NOT NULL)"
        )
        n = len(stored)
        geom_types = sorted({str(s) for s in np.unique(shapely.get_type_id(stored.shapes)).tolist()})
        t0 = time.perf_counter()
        with conn.cursor() as cur, cur.copy(
            f"COPY {TABLE} (id, party, geom, trange, arange) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int4", "int4", "bytea", "tstzrange", "numrange"])
            step = 50_000
            for lo in range(0, n, step):
                hi = min(n, lo + step)
                wkbs = shapely.to_wkb(shapely.set_srid(stored.shapes[lo:hi], 4326), include_srid=True)
                party = stored.party[lo:hi].tolist()
                st, en = stored.start_s[lo:hi].tolist(), stored.end_s[lo:hi].tolist()
                low, up = stored.lower[lo:hi].tolist(), stored.upper[lo:hi].tolist()
                for k in range(hi - lo):
                    copy.write_row((
                        lo + k, party[k], wkbs[k],
                        Range(datetime.fromtimestamp(st[k], tz=UTC), datetime.fromtimestamp(en[k], tz=UTC), "[)"),
                        Range(Decimal(low[k]), Decimal(up[k]), "[)"),
                    ))
        t_copy = time.perf_counter() - t0
        t0 = time.perf_counter()
        conn.execute(f"CREATE INDEX {TABLE}_gist ON {TABLE} USING gist (geom, trange, arange)")
        t_index = time.perf_counter() - t0
        t0 = time.perf_counter()
        conn.execute(f"ANALYZE {TABLE}")
        t_analyze = time.perf_counter() - t0
        row = conn.execute(
            f"SELECT pg_total_relation_size('{TABLE}'), pg_table_size('{TABLE}'), "
            f"pg_relation_size('{TABLE}_gist')"
        ).fetchone()
        assert row is not None
        total_size, table_size, index_size = row
        sql = (
            f"SELECT id FROM {TABLE} WHERE ST_Intersects(geom, ST_GeomFromWKB(%b, 4326)) "
            "AND trange && tstzrange(%s, %s, '[)') AND arange && numrange(%s, %s, '[)') AND party <> %s"
        )
        plan = conn.execute("EXPLAIN " + sql.replace("%b", "%s"), _pg_params(queries[0], 0, h, v, t, party_index),
                            prepare=False).fetchall()

        def one(cur: Any, q: Operation) -> tuple[list[tuple[int, list[int]]], float]:
            out = []
            t_buf = 0.0
            for i, a in enumerate(q.volumes):
                tb = time.perf_counter()
                buf = geodesy.geodesic_buffer(a.shape, h)
                t_buf += time.perf_counter() - tb
                params = (shapely.to_wkb(buf), a.start - timedelta(seconds=t), a.end + timedelta(seconds=t),
                          Decimal(a.lower_m - v), Decimal(a.upper_m + v), party_index[q.party_id])
                cur.execute(sql, params, prepare=True)
                out.append((i, [r[0] for r in cur.fetchall()]))
            return out, t_buf

        with conn.cursor() as cur:
            for q in queries[:WARMUP]:
                one(cur, q)
            lat: list[float] = []
            buf_lat: list[float] = []
            raw = []
            t_all = time.perf_counter()
            for q in queries:
                t0 = time.perf_counter()
                found, tb = one(cur, q)
                lat.append(time.perf_counter() - t0)
                buf_lat.append(tb)
                raw.append(found)
            total = time.perf_counter() - t_all
        backend = _pg_backend_status(conn)
        settings = dict(conn.execute(
            "SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name IN "
            "('shared_buffers', 'work_mem', 'maintenance_work_mem', 'effective_cache_size', 'jit', "
            "'max_parallel_workers_per_gather', 'random_page_cost')"
        ).fetchall())
        versions = conn.execute("SELECT version(), postgis_full_version()").fetchone()
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
    finally:
        conn.close()
    pairs = [{(i, str(stored.row_op[r]), int(stored.vol_j[r])) for i, rows in found for r in rows}
             for found in raw]
    result = {
        "build_s": round(t_copy + t_index + t_analyze, 3),
        "build_what": "COPY (binary, unlogged table) + CREATE INDEX gist (geom, trange, arange) + ANALYZE",
        "copy_s": round(t_copy, 3),
        "index_s": round(t_index, 3),
        "analyze_s": round(t_analyze, 3),
        "memory": {"relation_total_mib": mib(total_size), "table_mib": mib(table_size),
                   "index_mib": mib(index_size), **backend,
                   "what": "pg_total_relation_size (table + TOAST + GiST); backend RSS/VmHWM of the "
                           "connection that loaded and queried (includes touched shared buffers)"},
        "geometry_type_ids": geom_types,
        "settings": settings,
        "server": list(versions) if versions else [],
        "plan": [re.sub(r"'[0-9A-Fa-f]{40,}'::geometry", "'<buffered query footprint>'::geometry", r[0])
                 for r in plan],
        **latency_stats(lat, total),
        "buffer_only": latency_stats(buf_lat, sum(buf_lat)),
    }
    return result, pairs


def _pg_params(q: Operation, i: int, h: float, v: float, t: float, party_index: dict[str, int]) -> tuple[Any, ...]:
    a = q.volumes[i]
    buf = geodesy.geodesic_buffer(a.shape, h)
    return (shapely.to_wkb(buf), a.start - timedelta(seconds=t), a.end + timedelta(seconds=t),
            Decimal(a.lower_m - v), Decimal(a.upper_m + v), party_index[q.party_id])


def profile_forewarn(air: Airspace, queries: Sequence[Operation], top: int = 25) -> dict[str, Any]:
    """cProfile one pass of detect() over the queries (not the timed pass): shares by function."""
    prof = cProfile.Profile()
    prof.enable()
    for q in queries:
        detect(q, air, measure=False)
    prof.disable()
    stats = pstats.Stats(prof)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for (_cc, _nc, tt, _ct, _callers) in raw.values())

    def name(key: tuple[str, int, str]) -> str:
        path, line, func = key
        path = re.sub(r".*/site-packages/", "", path)
        path = re.sub(r".*/src/forewarn/", "forewarn/", path)
        return f"{path}:{line}({func})"

    rows = [(name(k), cc, tt, ct) for k, (cc, _nc, tt, ct, _callers) in raw.items()]
    by_tot = sorted(rows, key=lambda r: -r[2])[:top]
    by_cum = sorted(rows, key=lambda r: -r[3])[:top]
    forewarn_cum = {f: round(ct / total, 4) for f, _c, _tt, ct in rows if f.startswith("forewarn/")}
    return {
        "profiled_total_s": round(total, 3),
        "note": "cProfile adds overhead to every Python call; read shares, not absolute times",
        "by_self_time": [{"function": f, "calls": c, "self_s": round(tt, 4), "self_share": round(tt / total, 4)}
                         for f, c, tt, _ct in by_tot],
        "by_cumulative_time": [{"function": f, "calls": c, "cum_s": round(ct, 4), "cum_share": round(ct / total, 4)}
                               for f, c, _tt, ct in by_cum],
        "forewarn_cum_share": dict(sorted(forewarn_cum.items(), key=lambda kv: -kv[1])),
    }


def buffer_floor(queries: Sequence[Operation], h: float) -> dict[str, float]:
    """Time of the geodesic buffers alone per query operation (the floor every backend pays)."""
    lat = []
    t_all = time.perf_counter()
    for q in queries:
        t0 = time.perf_counter()
        for a in q.volumes:
            geodesy.geodesic_buffer(a.shape, h)
        lat.append(time.perf_counter() - t0)
    return latency_stats(lat, time.perf_counter() - t_all)


# ---------------------------------------------------------------------------------------------- comparison
def compare(named: dict[str, list[set[Pair]]]) -> dict[str, Any]:
    names = list(named)
    ref = names[0]
    mismatched: list[dict[str, Any]] = []
    missing = dict.fromkeys(names, 0)
    for qi in range(len(named[ref])):
        sets = {n: named[n][qi] for n in names}
        if all(s == sets[ref] for s in sets.values()):
            continue
        union = set().union(*sets.values())
        for n, s in sets.items():
            missing[n] += len(union - s)
        mismatched.append({
            "query": qi,
            **{f"only_missing_in_{n}": sorted(union - s)[:10] for n, s in sets.items() if union - s},
            "counts": {n: len(s) for n, s in sets.items()},
        })
    return {
        "backends": names,
        "identical": not mismatched,
        "queries_with_mismatch": len(mismatched),
        "pairs_missing_by_backend": missing,
        "examples": mismatched[:10],
        "pairs_total": {n: sum(len(s) for s in named[n]) for n in names},
        "queries_with_pairs": sum(1 for s in named[ref] if s),
    }


# ---------------------------------------------------------------------------------------------- report
def machine_info() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = 0
    with contextlib.suppress(OSError), open("/proc/meminfo", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    versions: dict[str, str] = {"numpy": np.__version__, "shapely": shapely.__version__,
                                "geos (shapely)": ".".join(map(str, shapely.geos_version))}
    with contextlib.suppress(ImportError):
        import psycopg

        versions["psycopg"] = psycopg.__version__
    import pydantic
    import pyproj

    versions["pyproj"] = pyproj.__version__
    versions["pydantic"] = pydantic.__version__
    return {
        "uname": " ".join(platform.uname()),
        "cpu": cpu,
        "nproc": os.cpu_count(),
        "memory_gib": round(mem / 2**30, 1),
        "python": sys.version.split()[0],
        "versions": versions,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", "-C", str(BENCH_DIR), *args], capture_output=True, text=True, check=False)
    except OSError:
        return ""
    return out.stdout.strip()


def source_state() -> dict[str, str]:
    """The commit and any uncommitted change to src/ (the numbers belong to this exact code)."""
    diff = _git("diff", "HEAD", "--", "../src")
    return {
        "commit": _git("rev-parse", "--short", "HEAD"),
        "src_uncommitted": _git("status", "--short", "--", "../src"),
        "src_diff_sha256": hashlib.sha256(diff.encode()).hexdigest()[:16] if diff else "",
    }


def _fmt_n(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else str(n)


def render_markdown(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    cfg = doc["config"]
    lines = [
        SECTION_TITLE,
        "",
        f"Command: `{doc['command']}` (commit {doc['source']['commit'] or '?'}"
        f"{' + uncommitted src changes' if doc['source']['src_uncommitted'] else ''}, {m['date']}).",
        "",
        f"Machine: {m['cpu']}, {m['nproc']} cores, {m['memory_gib']} GiB RAM; Python {m['python']}; "
        f"`{m['uname']}`.",
    ]
    pg = next((s["postgis"] for s in doc["sizes"] if isinstance(s.get("postgis"), dict)
               and "server" in s["postgis"]), None)
    if pg:
        lines.append(f"PostgreSQL: {pg['server'][0].split(' on ')[0]}, PostGIS "
                     f"{pg['server'][1].split()[0].split('=')[1].strip(chr(34))}; "
                     f"server settings {', '.join(f'{k}={v}' for k, v in sorted(pg['settings'].items()))} "
                     "(work_mem, maintenance_work_mem and jit set per session by the benchmark).")
    lines += [
        "",
        f"Workload: {cfg['region']}; {cfg['parties']} parties bound by one agreement with minima "
        f"H={cfg['minima']['horizontal_m']:.0f} m, V={cfg['minima']['vertical_m']:.0f} m, "
        f"T={cfg['minima']['time_s']:.0f} s; {cfg['queries']} query operations of 1-5 volumes "
        f"({cfg['query_volumes']} volumes); seed {cfg['seed']}. {cfg['shapes_note']}",
        "",
        "Each query operation is timed end to end, single client, after "
        f"{WARMUP} untimed warm-up queries: Forewarn = `detect(op, airspace, measure=False)`; PostGIS and "
        "STRtree = the same `geodesic_buffer` of each query volume + their search (PostGIS: one prepared "
        "statement per query volume over localhost; STRtree: `query(buffer, predicate='intersects')` then a "
        "NumPy filter on party, time and altitude). Build: Forewarn `Airspace.put_many`; PostGIS binary COPY "
        "into an unlogged table + GiST (geom, trange, arange) + ANALYZE; STRtree construction. Memory: "
        "Forewarn and STRtree = RSS growth of the benchmark process for the build (the operations and "
        "footprint shapes they share are listed as 'data'); PostGIS = table + TOAST + index size on disk.",
        "",
        "| N | backend | build (s) | queries/s | p50 (ms) | p99 (ms) | memory | pairs | identical |",
        "|---|---|---:|---:|---:|---:|---|---:|---|",
    ]
    for s in doc["sizes"]:
        same = "yes" if s["pairs"].get("identical") else f"**no** ({s['pairs'].get('queries_with_mismatch')} queries)"
        for backend in ("forewarn", "postgis", "strtree"):
            r = s.get(backend)
            if not isinstance(r, dict) or "queries_per_s" not in r:
                reason = r.get("error", "not run") if isinstance(r, dict) else "not run"
                lines.append(f"| {_fmt_n(s['n'])} | {backend} | - | - | - | - | {reason} | - | - |")
                continue
            mem = r["memory"]
            if backend == "postgis":
                memtxt = (f"{mem['relation_total_mib']:,.0f} MiB on disk (index {mem['index_mib']:,.0f}); "
                          f"backend peak RSS {mem['backend_peak_rss_mib']:,.0f} MiB")
                build = f"{r['build_s']:.1f} (COPY {r['copy_s']:.1f} + index {r['index_s']:.1f})"
            else:
                memtxt = f"+{mem['retained_mib']:,.0f} MiB (peak +{mem['build_peak_mib']:,.0f})"
                build = f"{r['build_s']:.2f}"
            pairs = s["pairs"]["pairs_total"].get(backend, "-")
            lines.append(
                f"| {_fmt_n(s['n'])} | {backend} | {build} | {r['queries_per_s']:,.0f} | {r['p50_ms']:.2f} | "
                f"{r['p99_ms']:.2f} | {memtxt} | {pairs:,} | {same} |"
            )
    lines += ["", "| N | generation (s): params / validate / shapes (vectorised) / corridor wait | data RSS "
              "(operations + shapes) | Forewarn / PostGIS throughput | geodesic buffers alone per query op: "
              "p50 / p99 (ms) |", "|---|---|---:|---:|---:|"]
    for s in doc["sizes"]:
        g = s["generation"]
        ratio = s.get("forewarn_over_postgis_qps")
        lines.append(
            f"| {_fmt_n(s['n'])} | {g['params_s']:.1f} / {g['validate_s']:.1f} / {g['shapes_vectorised_s']:.1f} / "
            f"{g['corridor_wait_s']:.1f} | {g['data_rss_mib']:,.0f} MiB | "
            f"{f'{ratio:.1f}x' if ratio else '-'} | {s['buffer_floor']['p50_ms']:.2f} / "
            f"{s['buffer_floor']['p99_ms']:.2f} |"
        )
    lines += ["", doc["verdict"], ""]
    if doc.get("profile_summary"):
        lines += [doc["profile_summary"], ""]
    return "\n".join(lines)


def write_markdown(path: Path, section: str) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    pattern = re.compile(rf"^{re.escape(SECTION_TITLE)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _m: section.rstrip("\n") + "\n\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def verdict(doc: dict[str, Any]) -> str:
    if not doc["sizes"]:
        return "No size completed."
    largest = max(doc["sizes"], key=lambda s: s["n"])
    fw = largest.get("forewarn") or {}
    ratio = largest.get("forewarn_over_postgis_qps")
    p99 = fw.get("p99_ms")
    ident = all(s["pairs"].get("identical") for s in doc["sizes"])
    n = _fmt_n(largest["n"])
    parts = [f"Targets at {n} stored volumes (Forewarn throughput >= 10x PostGIS, p99 < 2 ms):"]
    if ratio is None:
        parts.append("throughput ratio not measured (PostGIS did not run);")
    else:
        parts.append(f"throughput {ratio:.1f}x PostGIS ({'met' if ratio >= 10 else 'missed'});")
    if p99 is not None:
        parts.append(f"p99 {p99:.2f} ms ({'met' if p99 < 2.0 else 'missed'}).")
    if ident:
        parts.append("All three backends returned identical pairs for every query at every size.")
    else:
        parts.append("The backends did NOT return identical pairs everywhere:")
        for s in doc["sizes"]:
            p = s["pairs"]
            if not p.get("identical"):
                miss = ", ".join(f"{k} lacks {v:,}" for k, v in p["pairs_missing_by_backend"].items() if v)
                parts.append(f"at {_fmt_n(s['n'])}, {p['queries_with_mismatch']} queries differ ({miss} of the "
                             "pairs the others found);")
        parts.append("examples in bench/results/strategic.json (pairs.examples).")
    if largest["n"] < 1_000_000:
        parts.append("The 1M size was not run in this pass.")
    return " ".join(parts)


def profile_summary(profile: dict[str, Any] | None, n: int) -> str:
    if not profile:
        return ""
    cum = profile["forewarn_cum_share"]
    keys = [
        ("(geodesic_buffer)", "geodesic_buffer of the query volumes"),
        ("(query)", "VolumeIndex.query"),
        ("(_test_pair)", "_test_pair (exact test + Conflict record)"),
        ("(volumes_conflict)", "of which volumes_conflict (exact 4D test)"),
        ("(_unmeasured)", "of which _unmeasured (Conflict records)"),
        ("(minima)", "of which AgreementBook.minima"),
    ]
    out = []
    for needle, label in keys:
        hit = [share for f, share in cum.items() if f.endswith(needle)]
        if hit:
            out.append(f"{label} {100 * hit[0]:.0f}%")
    return (f"Profile of `detect` at {_fmt_n(n)} (cProfile, cumulative share of the pass): "
            + "; ".join(out) + ". Full tables in bench/results/strategic.json (`profile`).")


# ---------------------------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000", help="stored volume counts, comma separated")
    ap.add_argument("--queries", type=int, default=1000, help="query operations (1-5 volumes each)")
    ap.add_argument("--seed", type=int, default=20151117)
    ap.add_argument("--horizontal-m", type=float, default=5000.0)
    ap.add_argument("--vertical-m", type=float, default=300.0)
    ap.add_argument("--time-s", type=float, default=300.0)
    ap.add_argument("--dsn", default=os.environ.get("FOREWARN_BENCH_DSN",
                                                    "host=127.0.0.1 port=5432 user=postgres dbname=forewarn_bench"))
    ap.add_argument("--work-mem", default="64MB")
    ap.add_argument("--no-postgis", action="store_true", help="skip the PostGIS backend")
    ap.add_argument("--no-profile", action="store_true", help="skip the cProfile pass at the largest size")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes for corridor shapes")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON)
    ap.add_argument("--markdown", type=Path, default=DEFAULT_MD)
    args = ap.parse_args(argv)
    sizes = sorted({int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()})
    minima = Minima(args.horizontal_m, args.vertical_m, args.time_s)

    t_run = time.perf_counter()
    pool = multiprocessing.get_context("fork").Pool(args.workers) if args.workers > 1 else None
    baseline_rss = rss()
    world = World.make(args.seed)
    agreement = Agreement(
        id="bench-agreement", name="Benchmark agreement", parties=world.parties,
        default_minima=SeparationMinima(horizontal_m=minima.horizontal_m, vertical_m=minima.vertical_m,
                                        time_s=minima.time_s),
    )
    gc.disable()
    t0 = time.perf_counter()
    queries = make_queries(world, args.seed, args.queries)
    t_queries = time.perf_counter() - t0
    gc.enable()
    print(f"queries: {len(queries)} operations, {sum(len(q.volumes) for q in queries)} volumes "
          f"({t_queries:.1f} s)", flush=True)
    # The local projections geodesic_buffer caches (one per 0.5-degree cell, lru 2048) are built once here,
    # untimed, so that no backend pays their construction: a running service has them warm for its region.
    t0 = time.perf_counter()
    cells = set()
    for q in queries:
        for a in q.volumes:
            c = a.shape.centroid
            cells.add((round(c.x * 2), round(c.y * 2)))
            geodesy.geodesic_buffer(a.shape, minima.horizontal_m)
    t_warm = time.perf_counter() - t0
    print(f"projection warm-up: {len(cells)} cells, {t_warm:.1f} s", flush=True)
    dataset = Dataset(world, args.seed, pool)
    command = "python bench/strategic.py " + " ".join(argv if argv is not None else sys.argv[1:])
    doc: dict[str, Any] = {
        "benchmark": "strategic detection: Forewarn 4D index vs PostgreSQL+PostGIS vs shapely STRtree",
        "command": command.strip(),
        "source": source_state(),
        "machine": machine_info(),
        "config": {
            "sizes": sizes, "queries": args.queries, "seed": args.seed,
            "query_volumes": sum(len(q.volumes) for q in queries),
            "minima": {"horizontal_m": minima.horizontal_m, "vertical_m": minima.vertical_m, "time_s": minima.time_s},
            "region": (f"1,000 km x 1,000 km centred on {CENTRE_LON:g}E {CENTRE_LAT:g}N, 7 days from "
                       f"{T0.date().isoformat()}, 60% of operations around 40 hot spots"),
            "parties": N_PARTIES,
            "classes": [{"name": c.name, "weight": c.weight, "kinds": dict(zip(KIND_NAMES, c.kinds, strict=True)),
                         "size_km": c.size_km, "lower_m": c.lower_m, "thick_m": c.thick_m,
                         "window_min": c.minutes} for c in CLASSES],
            "shapes_note": ("Footprint shapes are computed once at generation and shared by the three "
                            "backends (Forewarn's put_many does not recompute them); their cost is in the "
                            "generation row."),
            "gc": "gc disabled during generation, then gc.collect() + gc.freeze() before the backends run",
            "warmup_queries": WARMUP,
            "projection_warmup": {
                "cells": len(cells), "seconds": round(t_warm, 2),
                "note": "one untimed geodesic_buffer of every query volume before any backend runs, so the "
                        "cached local projections (pyproj Transformers, one per 0.5-degree cell) are warm for "
                        "all three backends; building them cold costs tens of ms per new cell",
            },
        },
        "sizes": [],
    }
    for n in sizes:
        print(f"--- N = {n:,}", flush=True)
        gc.unfreeze()
        gc.disable()
        t0 = time.perf_counter()
        chunks, _new = dataset.chunks(n)
        t_gen = time.perf_counter() - t0
        stored = Stored.of(chunks)
        gc.enable()
        gc.collect()
        gc.freeze()
        kinds = np.bincount(stored.kind, minlength=3)
        gen = {
            key: round(sum(c.timings[key] for c in chunks), 2)
            for key in ("params_s", "validate_s", "shapes_vectorised_s", "corridor_wait_s", "shape_check_s",
                        "total_s")
        }
        gen |= {
            "this_run_s": round(t_gen, 2),
            "operations": len(stored.ops),
            "volumes_by_kind": dict(zip(KIND_NAMES, kinds.tolist(), strict=True)),
            "vertices_mean": round(float(shapely.get_num_coordinates(stored.shapes).mean()), 1),
            "shapes_checked_identical": sum(c.checked for c in chunks),
            "data_rss_mib": mib(rss() - baseline_rss),
            "note": "summed over the chunks of this size (chunks are shared with the smaller sizes); "
                    "validate = Volume4D/footprint/Operation pydantic construction",
        }
        print(f"generated {len(stored):,} volumes in {len(stored.ops):,} operations "
              f"({t_gen:.1f} s this size; {gen})", flush=True)
        entry: dict[str, Any] = {"n": n, "generation": gen}
        named: dict[str, list[set[Pair]]] = {}
        trim_memory()

        fw, named["forewarn"], air = run_forewarn(stored, queries, agreement)
        entry["forewarn"] = fw
        print(f"forewarn: {fw}", flush=True)
        if n == sizes[-1] and not args.no_profile:
            print("profiling detect() ...", flush=True)
            doc["profile"] = profile_forewarn(air, queries) | {"n": n}
            doc["profile_summary"] = profile_summary(doc["profile"], n)
            print(doc["profile_summary"], flush=True)
        del air
        trim_memory()

        st, named["strtree"] = run_strtree(stored, queries, minima)
        entry["strtree"] = st
        print(f"strtree: {st}", flush=True)
        trim_memory()

        if not args.no_postgis:
            try:
                pg, named["postgis"] = run_postgis(stored, queries, minima, args.dsn, args.work_mem)
                entry["postgis"] = pg
                print(f"postgis: { {k: v for k, v in pg.items() if k != 'plan'} }", flush=True)
                print("plan:\n  " + "\n  ".join(pg["plan"]), flush=True)
                entry["forewarn_over_postgis_qps"] = round(fw["queries_per_s"] / pg["queries_per_s"], 2)
            except Exception as exc:  # report and go on: the other backends' numbers stand
                entry["postgis"] = {"error": f"{type(exc).__name__}: {exc}"}
                print(f"postgis failed: {exc!r}", flush=True)
        entry["pairs"] = compare(named)
        entry["buffer_floor"] = buffer_floor(queries, minima.horizontal_m)
        print(f"pairs: { {k: v for k, v in entry['pairs'].items() if k != 'examples'} }", flush=True)
        if not entry["pairs"]["identical"]:
            print(f"MISMATCH examples: {entry['pairs']['examples'][:3]}", flush=True)
        doc["sizes"].append(entry)
        doc["elapsed_s"] = round(time.perf_counter() - t_run, 1)
        doc["verdict"] = verdict(doc)
        save(doc, args)
        del stored
        trim_memory()

    if pool is not None:
        pool.close()
        pool.join()
    doc["elapsed_s"] = round(time.perf_counter() - t_run, 1)
    doc["verdict"] = verdict(doc)
    save(doc, args)
    print(doc["verdict"])
    print(f"total {doc['elapsed_s']:.0f} s; wrote {args.json} and {args.markdown}")
    ok = all(s["pairs"]["identical"] for s in doc["sizes"])
    return 0 if ok else 1


def save(doc: dict[str, Any], args: argparse.Namespace) -> None:
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
    write_markdown(args.markdown, render_markdown(doc))


if __name__ == "__main__":
    raise SystemExit(main())
