#!/usr/bin/env python
"""Strategic detection benchmark: Forewarn's 4D index vs PostgreSQL + PostGIS vs shapely's STRtree.

Generates N stored volumes (default 10k, 100k and 1M) of plausible operations over a 1,000 km x 1,000 km
region centred on 38E 35N and over 7 days, and 1,000 query operations of 1-5 volumes each. Every query
operation is answered by the three backends in the same run; the script checks that all three return the
same (query volume, stored operation, stored volume) pairs and writes the numbers to
``bench/results/strategic.json`` and to the "Strategic detection" section of ``bench/RESULTS.md``.

    bash bench/setup_postgis.sh                       # once: PostGIS + database forewarn_bench
    python bench/strategic.py --sizes 10000,100000,1000000 --queries 1000

The predicate is the one of :mod:`forewarn.core.conflicts` with a single agreement binding 20 parties and no
class minima (H metres, V metres, T seconds for every pair):

* time      ``B.start < A.end + T and B.end > A.start - T``
* altitude  ``B.lower < A.upper + V and B.upper > A.lower - V``
* space     B's footprint intersects A's footprint buffered geodesically by H, the buffer being the one
  Forewarn's exact test uses: ``footprint.buffered(H)`` (a circle of radius r + H, a corridor of half-width
  w + H, :func:`forewarn.geo.geodesy.geodesic_buffer` of a polygon); B belongs to another party.

What each backend's timed query includes: Forewarn, one call of :func:`forewarn.core.conflicts.detect`
(``measure=False``: search box, index lookup, party/agreement/time/altitude checks, one prepared buffer of each
query volume and a vectorised intersects against it, Conflict records), on copies of the query operations
without cached buffers; PostGIS and STRtree, ``footprint.buffered(H)`` of every query volume plus their search.
The query footprints themselves (``volume.shape``) are computed once before timing, for all three.

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
import pstats
import re
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
from shapely.geometry.base import BaseGeometry

from common import git, host_info, write_section
from forewarn.core.airspace import AgreementBook, Airspace
from forewarn.core.conflicts import find_conflicts
from forewarn.core.model import Agreement, Operation, SeparationMinima
from forewarn.geo import geodesy
from forewarn.geo.volume import CircleFootprint, CorridorFootprint, PolygonFootprint, Volume4D

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
    def make(cls, seed: int, hot_share: float = 0.6) -> World:
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
            hot_share=hot_share,
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
    fallback: list[str] = field(default_factory=list)


def _loguniform(rng: np.random.Generator, lo: FloatArray, hi: FloatArray) -> FloatArray:
    lo = np.maximum(lo, 1e-9)
    return np.asarray(np.exp(rng.uniform(np.log(lo), np.log(np.maximum(hi, lo)))))


def _to_lonlat(x_km: FloatArray, y_km: FloatArray, lat0: FloatArray | float, lon0: FloatArray | float
               ) -> tuple[FloatArray, FloatArray]:
    lat = lat0 + y_km / KM_PER_DEG_LAT
    lon = lon0 + x_km / (KM_PER_DEG_LON_EQ * np.cos(np.radians(lat0)))
    return np.asarray(lon), np.asarray(lat)


def _real_shapes(task: tuple[int, list[Any]]) -> list[bytes]:
    """Worker: footprint shapes exactly as ``footprint.shape()`` builds them (same functions), as WKB."""
    kind, items = task
    if kind == CIRCLE:
        return [shapely.to_wkb(geodesy.geodesic_circle(lon, lat, r)) for lon, lat, r in items]
    if kind == CORRIDOR:
        return [shapely.to_wkb(geodesy.geodesic_corridor(path, hw)) for path, hw in items]
    return [shapely.to_wkb(PolygonFootprint.model_construct(coordinates=ring).shape()) for ring in items]


def real_shapes(pool: Any | None, kind: int, items: list[Any]) -> Any:
    """Start computing shapes with the real functions (in the pool when there is one); ``.get()`` the WKBs."""
    if pool is None or not items:
        out = [w for w in _real_shapes((kind, items))]

        class _Done:
            def get(self) -> list[bytes]:
                return out

        return _Done()
    per = max(1, math.ceil(len(items) / 8))
    pending = pool.map_async(_real_shapes, [(kind, items[i:i + per]) for i in range(0, len(items), per)])

    class _Flat:
        def get(self) -> list[bytes]:
            return [w for part in pending.get() for w in part]

    return _Flat()


def _split_points(coords: FloatArray, counts: IntArray) -> list[list[tuple[float, float]]]:
    if len(counts) == 0:
        return []
    return [[(x, y) for x, y in part.tolist()] for part in np.split(coords, np.cumsum(counts)[:-1])]


def circle_shapes(lon: FloatArray, lat: FloatArray, radius: FloatArray) -> NDArray[np.object_]:
    """Vectorised :func:`geodesy.geodesic_circle` (same vertex counts, azimuths and ``GEOD.fwd`` calls)."""
    out = np.empty(len(lon), dtype=object)
    counts = np.array([geodesy.arc_vertex_count(float(r), float(y)) for r, y in zip(radius, lat, strict=True)],
                      dtype=np.int64)
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
    pending = real_shapes(pool, CORRIDOR, items)

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
        shapes[is_corr] = shapely.from_wkb(np.asarray(pending.get(), dtype=object))
    t_corr_wait = time.perf_counter() - t0

    # ---- a sample of each kind, byte for byte against footprint.shape(); if the vectorised copy of a
    # kind no longer matches (the library changed), that kind is recomputed with the real functions
    t0 = time.perf_counter()
    checked = 0
    fallback: list[str] = []
    real_items = {CIRCLE: list(zip([clon_list[v] for v in is_circle.tolist()],
                                   [clat_list[v] for v in is_circle.tolist()], radius_list, strict=True)),
                  POLYGON: poly_rings}
    for k, sel in ((CIRCLE, is_circle), (POLYGON, is_poly), (CORRIDOR, is_corr)):
        sample = rng.choice(sel, size=min(check, len(sel)), replace=False).tolist()
        if any(vols[v].footprint.shape().wkb != shapes[v].wkb for v in sample):
            if k == CORRIDOR:
                raise AssertionError("corridor shapes from footprint.shape() differ from footprint.shape()")
            fallback.append(KIND_NAMES[k])
            shapes[sel] = shapely.from_wkb(np.asarray(real_shapes(pool, k, real_items[k]).get(), dtype=object))
            for v in sample:
                if vols[v].footprint.shape().wkb != shapes[v].wkb:
                    raise AssertionError(f"{KIND_NAMES[k]} shape of volume {v} is not reproducible")
        checked += len(sample)
    t_check = time.perf_counter() - t0
    for v, vol in enumerate(vols):
        vol.__dict__["shape"] = shapes[v]  # the cached_property's slot: put_many will not recompute it
    return Chunk(
        ops=ops, op_ids=op_ids, op_of=op_of, vol_j=vol_j, party=party[op_of], lower=lower, upper=upper,
        start_s=start_s, end_s=end_s, kind=kind, shapes=shapes, checked=checked, fallback=fallback,
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


class Backend:
    """One way of answering the query operations: build once, then ``query`` one operation at a time."""

    name = ""

    def build(self) -> dict[str, Any]:
        raise NotImplementedError

    def prepare(self, queries: Sequence[Operation]) -> Sequence[Operation]:
        """What ``query`` receives for these query operations (prepared untimed)."""
        return queries

    def query(self, q: Operation) -> Any:
        raise NotImplementedError

    def pairs(self, raw: Any) -> set[Pair]:
        raise NotImplementedError

    def close(self) -> dict[str, Any]:
        return {}


class ForewarnBackend(Backend):
    name = "forewarn"

    def __init__(self, stored: Stored, agreement: Agreement) -> None:
        self.stored, self.agreement = stored, agreement
        by_id = {op.id: op for op in stored.ops}  # stands for the store: the airspace keeps no records
        self.air = Airspace(book=AgreementBook([agreement]), loader=lambda i, v: by_id.get(i))

    def build(self) -> dict[str, Any]:
        trim_memory()
        before = rss()
        reset_peak()
        t0 = time.perf_counter()
        self.air.put_many(self.stored.ops)
        build = time.perf_counter() - t0
        build_peak = peak_rss()
        gc.collect()
        after = rss()
        return {
            "build_s": round(build, 3),
            "build_what": "Airspace.put_many (footprint shapes already cached on the volumes)",
            "memory": {
                "retained_mib": mib(after - before),
                "build_peak_mib": mib(build_peak - before),
                "index_arrays_mib": mib(self.air.index.memory_bytes()),
                "what": "RSS growth of this process for put_many (index arrays, key dicts, shape dict); "
                        "operations and shapes are the shared data, see generation.data_rss_mib",
            },
            "cell_deg": self.air.index.cell_deg,
        }

    def prepare(self, queries: Sequence[Operation]) -> list[Operation]:
        """Copies of the query operations without the buffers ``Volume4D.buffered`` caches on them, so that every
        timed call builds what it needs, as for a newly filed operation (footprint shapes kept)."""
        out = []
        for q in queries:
            vols = []
            for v in q.volumes:
                c = v.model_copy()
                c.__dict__.pop("_buffers", None)
                vols.append(c)
            out.append(q.model_copy(update={"volumes": vols}))
        return out

    def query(self, q: Operation) -> Any:
        return find_conflicts(q, self.air, measure=False)

    def pairs(self, raw: Any) -> set[Pair]:
        return set(raw.pairs())


class STRtreeBackend(Backend):
    name = "strtree"

    def __init__(self, stored: Stored, minima: Minima) -> None:
        self.stored, self.minima = stored, minima
        self.party_index = {f"party-{i:02d}": i for i in range(N_PARTIES)}
        self.buffer_s: list[float] = []

    def build(self) -> dict[str, Any]:
        trim_memory()
        before = rss()
        reset_peak()
        t0 = time.perf_counter()
        self.tree = shapely.STRtree(self.stored.shapes)
        self.tree.query(shapely.box(0.0, 0.0, 0.0, 0.0))  # make sure the tree is built inside the timing
        build = time.perf_counter() - t0
        build_peak = peak_rss()
        after = rss()
        return {
            "build_s": round(build, 4),
            "build_what": "shapely.STRtree(all stored shapes)",
            "memory": {"retained_mib": mib(after - before), "build_peak_mib": mib(build_peak - before),
                       "what": "RSS growth for the tree (shapes and the NumPy columns are shared data)"},
        }

    def query(self, q: Operation) -> Any:
        st = self.stored
        h, v, t = self.minima.horizontal_m, self.minima.vertical_m, self.minima.time_s
        qp = self.party_index[q.party_id]
        out = []
        t_buf = 0.0
        for i, a in enumerate(q.volumes):
            tb = time.perf_counter()
            buf = a.footprint.buffered(h)
            t_buf += time.perf_counter() - tb
            idx = self.tree.query(buf, predicate="intersects")
            m = ((st.party[idx] != qp) & (st.start_s[idx] < a.end_s + t) & (st.end_s[idx] > a.start_s - t)
                 & (st.lower[idx] < a.upper_m + v) & (st.upper[idx] > a.lower_m - v))
            out.append((i, idx[m]))
        self.buffer_s.append(t_buf)
        return out

    def pairs(self, raw: Any) -> set[Pair]:
        st = self.stored
        return {(i, str(st.row_op[r]), int(st.vol_j[r])) for i, rows in raw for r in rows.tolist()}


class PostGISBackend(Backend):
    name = "postgis"
    SQL = (
        f"SELECT id FROM {TABLE} WHERE ST_Intersects(geom, ST_GeomFromWKB(%b, 4326)) "
        "AND trange && tstzrange(%s, %s, '[)') AND arange && numrange(%s, %s, '[)') AND party <> %s"
    )

    def __init__(self, stored: Stored, minima: Minima, dsn: str, work_mem: str) -> None:
        import psycopg

        self.stored, self.minima = stored, minima
        self.party_index = {f"party-{i:02d}": i for i in range(N_PARTIES)}
        self.buffer_s: list[float] = []
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.conn.execute(f"SET work_mem = '{work_mem}'")
        self.conn.execute("SET maintenance_work_mem = '1GB'")
        self.conn.execute("SET jit = off")
        self.cur = self.conn.cursor()

    def build(self) -> dict[str, Any]:
        from psycopg.types.range import Range

        conn, stored = self.conn, self.stored
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
        settings = dict(conn.execute(
            "SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name IN "
            "('shared_buffers', 'work_mem', 'maintenance_work_mem', 'effective_cache_size', 'jit', "
            "'max_parallel_workers_per_gather', 'random_page_cost')"
        ).fetchall())
        versions = conn.execute("SELECT version(), postgis_full_version()").fetchone()
        return {
            "build_s": round(t_copy + t_index + t_analyze, 3),
            "build_what": "COPY (binary, unlogged table) + CREATE INDEX gist (geom, trange, arange) + ANALYZE",
            "copy_s": round(t_copy, 3),
            "index_s": round(t_index, 3),
            "analyze_s": round(t_analyze, 3),
            "memory": {"relation_total_mib": mib(total_size), "table_mib": mib(table_size),
                       "index_mib": mib(index_size)},
            "geometry_type_ids": geom_types,
            "settings": settings,
            "server": list(versions) if versions else [],
        }

    def _params(self, q: Operation, a: Volume4D, buf: BaseGeometry) -> tuple[Any, ...]:
        v, t = self.minima.vertical_m, self.minima.time_s
        return (shapely.to_wkb(buf), a.start - timedelta(seconds=t), a.end + timedelta(seconds=t),
                Decimal(a.lower_m - v), Decimal(a.upper_m + v), self.party_index[q.party_id])

    def plan(self, q: Operation) -> list[str]:
        a = q.volumes[0]
        buf = a.footprint.buffered(self.minima.horizontal_m)
        rows = self.conn.execute("EXPLAIN " + self.SQL, self._params(q, a, buf), prepare=False).fetchall()
        return [re.sub(r"'[0-9A-Fa-f]{40,}'::geometry", "'<buffered query footprint>'::geometry", r[0])
                for r in rows]

    def query(self, q: Operation) -> Any:
        out = []
        t_buf = 0.0
        for i, a in enumerate(q.volumes):
            tb = time.perf_counter()
            buf = a.footprint.buffered(self.minima.horizontal_m)
            t_buf += time.perf_counter() - tb
            self.cur.execute(self.SQL, self._params(q, a, buf), prepare=True)
            out.append((i, [r[0] for r in self.cur.fetchall()]))
        self.buffer_s.append(t_buf)
        return out

    def pairs(self, raw: Any) -> set[Pair]:
        st = self.stored
        return {(i, str(st.row_op[r]), int(st.vol_j[r])) for i, rows in raw for r in rows}

    def close(self) -> dict[str, Any]:
        pid = self.conn.info.backend_pid
        out = {"backend_rss_mib": mib(_proc_status("VmRSS", pid)),
               "backend_peak_rss_mib": mib(_proc_status("VmHWM", pid))}
        with contextlib.suppress(Exception):
            self.conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        self.conn.close()
        return out


def run_interleaved(backends: Sequence[Backend], queries: Sequence[Operation]
                    ) -> tuple[dict[str, list[float]], dict[str, list[set[Pair]]], dict[str, Any]]:
    """Time every backend on every query operation, query by query, the order rotating.

    Interleaving makes a noisy neighbour (other processes on this shared machine) hit all backends alike.
    """
    for b in backends:
        for q in b.prepare(queries[:WARMUP]):
            b.query(q)
        if isinstance(b, STRtreeBackend | PostGISBackend):
            b.buffer_s.clear()
    inputs = {b.name: b.prepare(queries) for b in backends}
    lat: dict[str, list[float]] = {b.name: [] for b in backends}
    pairs: dict[str, list[set[Pair]]] = {b.name: [] for b in backends}
    # garbage-collector pauses, charged to the backend whose query was running
    running = [""]
    gc_started = [0.0]
    gc_pauses: dict[str, list[tuple[int, float]]] = {b.name: [] for b in backends}

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        elif running[0]:
            gc_pauses[running[0]].append((info["generation"], time.perf_counter() - gc_started[0]))

    gc.callbacks.append(on_gc)
    load_before = os.getloadavg()
    cpu0 = time.process_time()
    t_all = time.perf_counter()
    k = len(backends)
    try:
        for qi in range(len(queries)):
            for j in range(k):
                b = backends[(qi + j) % k]
                running[0] = b.name
                t0 = time.perf_counter()
                found = b.query(inputs[b.name][qi])
                lat[b.name].append(time.perf_counter() - t0)
                running[0] = ""
                # keep only the pairs (untimed): holding every Conflict record would grow the heap the
                # garbage collector scans, and charge the harness's memory to the backend's later queries
                pairs[b.name].append(b.pairs(found))
                del found
    finally:
        gc.callbacks.remove(on_gc)
    wall = time.perf_counter() - t_all
    info = {
        "wall_s": round(wall, 2),
        "process_cpu_s": round(time.process_time() - cpu0, 2),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "gc_pauses": {
            name: {"count": len(p), "gen2_count": sum(1 for g, _ in p if g == 2),
                   "total_ms": round(1000 * sum(d for _, d in p), 2),
                   "max_ms": round(1000 * max((d for _, d in p), default=0.0), 2)}
            for name, p in gc_pauses.items()
        },
    }
    return lat, pairs, info


def latency_model(lat: Sequence[float], nvol: Sequence[int], npairs: Sequence[int]) -> dict[str, float]:
    """Least-squares latency = a + b * query volumes + c * pairs found (ms, ms, microseconds)."""
    x = np.column_stack([np.ones(len(lat)), np.asarray(nvol, float), np.asarray(npairs, float)])
    coef, *_ = np.linalg.lstsq(x, np.asarray(lat) * 1000.0, rcond=None)
    return {"fixed_ms": round(float(coef[0]), 3), "per_query_volume_ms": round(float(coef[1]), 3),
            "per_pair_us": round(float(coef[2]) * 1000.0, 1)}


def slowest(lat: Sequence[float], queries: Sequence[Operation], npairs: Sequence[int], k: int = 5
            ) -> list[dict[str, Any]]:
    order = np.argsort(lat)[::-1][:k]
    return [{"query": int(i), "ms": round(lat[i] * 1000, 2), "volumes": len(queries[i].volumes),
             "pairs": int(npairs[i]), "class": queries[i].activity_class} for i in order.tolist()]


def profile_forewarn(air: Airspace, queries: Sequence[Operation], top: int = 25) -> dict[str, Any]:
    """cProfile one pass of detect() over the queries (not the timed pass): shares by function."""
    prof = cProfile.Profile()
    prof.enable()
    for q in queries:
        find_conflicts(q, air, measure=False)
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
    """Time of building the buffered footprints alone per query operation (what the baselines pay; Forewarn
    builds one only for pairs its cheap tests cannot decide)."""
    lat = []
    t_all = time.perf_counter()
    for q in queries:
        t0 = time.perf_counter()
        for a in q.volumes:
            a.footprint.buffered(h)
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
    versions: dict[str, str] = {"numpy": np.__version__, "shapely": shapely.__version__,
                                "geos (shapely)": ".".join(map(str, shapely.geos_version))}
    with contextlib.suppress(ImportError):
        import psycopg

        versions["psycopg"] = psycopg.__version__
    import pydantic
    import pyproj

    versions["pyproj"] = pyproj.__version__
    versions["pydantic"] = pydantic.__version__
    return host_info(versions)


def source_state() -> dict[str, str]:
    """The commit and any uncommitted change to src/ (the numbers belong to this exact code)."""
    diff = git("diff", "HEAD", "--", "../src")
    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "src_uncommitted": git("status", "--short", "--", "../src"),
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
        f"{WARMUP} untimed warm-up queries, the three backends interleaved query by query (rotating order, "
        "so load from other processes on this shared machine hits all three alike); queries/s = queries / "
        "sum of that backend's latencies. Forewarn = `find_conflicts(op, airspace, measure=False)` (every pair "
        "decided, exact test included; the Conflict records are built on read: the 'forewarn + records' row "
        "times the same call with `.records()`, in a separate untimed-for-the-ratio pass); PostGIS and "
        "STRtree = `footprint.buffered(H)` of each query volume (the buffer Forewarn's exact test uses: "
        "circle r+H, corridor w+H, geodesic buffer of a polygon) + their search (PostGIS: one prepared "
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
            rec = r.get("with_records")
            if backend == "forewarn" and rec:
                lines.append(f"| {_fmt_n(s['n'])} | forewarn + records | - | {rec['queries_per_s']:,.0f} | "
                             f"{rec['p50_ms']:.2f} | {rec['p99_ms']:.2f} | full records held: "
                             f"{r.get('held_records', '-')} | - | - |")
    lines += ["", "| N | Forewarn / PostGIS throughput | pairs per query op | buffers alone per query op: "
              "p50 / p99 (ms) | Forewarn latency fit: fixed + per query volume + per pair | load avg (1 min) "
              "before / after timing | generation (s): params / validate / shapes (vectorised) / corridor wait "
              "| data RSS (operations + shapes) | GC pauses during the timed queries (count, max ms) |",
              "|---|---:|---:|---:|---|---|---|---:|---|"]
    for s in doc["sizes"]:
        g = s["generation"]
        ratio = s.get("forewarn_over_postgis_qps")
        fit = s["forewarn"].get("latency_model", {})
        tm = s.get("timing", {})
        lines.append(
            f"| {_fmt_n(s['n'])} | {f'{ratio:.1f}x' if ratio else '-'} | {s['pairs'].get('per_query_op_mean', '-')} "
            f"| {s['buffer_floor']['p50_ms']:.2f} / {s['buffer_floor']['p99_ms']:.2f} | "
            f"{fit.get('fixed_ms', 0):.2f} ms + {fit.get('per_query_volume_ms', 0):.2f} ms + "
            f"{fit.get('per_pair_us', 0):.0f} us | {tm.get('loadavg_before', ['?'])[0]} / "
            f"{tm.get('loadavg_after', ['?'])[0]} | {g['params_s']:.1f} / {g['validate_s']:.1f} / "
            f"{g['shapes_vectorised_s']:.1f} / {g['corridor_wait_s']:.1f} | {g['data_rss_mib']:,.0f} MiB | "
            + "; ".join(f"{k} {v['count']}, {v['max_ms']:.0f}" for k, v in tm.get("gc_pauses", {}).items())
            + " |"
        )
    lines += ["", doc["verdict"], ""]
    if doc.get("profile_summary"):
        lines += [doc["profile_summary"], ""]
    return "\n".join(lines)


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
        ("(search_box)", "search_box"),
        ("(query)", "VolumeIndex.query"),
        ("(_test_pair)", "_test_pair"),
        ("(volumes_conflict)", "of which volumes_conflict (exact 4D test)"),
        ("(quick_within)", "of which quick_within"),
        ("(buffered)", "of which Volume4D.buffered (buffer construction)"),
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
    ap.add_argument("--hot-share", type=float, default=0.6,
                    help="share of operations placed around the 40 hot spots (the rest uniform)")
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
    world = World.make(args.seed, args.hot_share)
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
    # The local projections the buffers use (cached, one per 0.5-degree cell) are built once here, untimed,
    # so that no backend pays their construction: a running service has them warm for its region.
    t0 = time.perf_counter()
    cells = set()
    for q in queries:
        for a in q.volumes:
            c = a.shape.centroid
            cells.add((round(c.x * 2), round(c.y * 2)))
            a.footprint.buffered(minima.horizontal_m)
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
                       f"{T0.date().isoformat()}, {100 * args.hot_share:.0f}% of operations around 40 hot spots"),
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
                "note": "one untimed buffer of every query volume before any backend runs, so the cached "
                        "local projections (pyproj Transformers, one per 0.5-degree cell) are warm for all "
                        "three backends",
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
            "shape_kinds_recomputed_with_real_functions": sorted({k for c in chunks for k in c.fallback}),
            "data_rss_mib": mib(rss() - baseline_rss),
            "note": "summed over the chunks of this size (chunks are shared with the smaller sizes); "
                    "validate = Volume4D/footprint/Operation pydantic construction",
        }
        print(f"generated {len(stored):,} volumes in {len(stored.ops):,} operations "
              f"({t_gen:.1f} s this size; {gen})", flush=True)
        entry: dict[str, Any] = {"n": n, "generation": gen}
        trim_memory()
        backends: list[Backend] = []
        fw = ForewarnBackend(stored, agreement)
        entry["forewarn"] = fw.build()
        backends.append(fw)
        print(f"forewarn build: {entry['forewarn']}", flush=True)
        st = STRtreeBackend(stored, minima)
        entry["strtree"] = st.build()
        backends.append(st)
        print(f"strtree build: {entry['strtree']}", flush=True)
        pg: PostGISBackend | None = None
        if not args.no_postgis:
            try:
                pg = PostGISBackend(stored, minima, args.dsn, args.work_mem)
                entry["postgis"] = pg.build()
                entry["postgis"]["plan"] = pg.plan(queries[0])
                backends.append(pg)
                print(f"postgis build: { {k: v for k, v in entry['postgis'].items() if k != 'plan'} }", flush=True)
                print("plan:\n  " + "\n  ".join(entry["postgis"]["plan"]), flush=True)
            except Exception as exc:  # report and go on: the other backends' numbers stand
                entry["postgis"] = {"error": f"{type(exc).__name__}: {exc}"}
                print(f"postgis failed: {exc!r}", flush=True)
                pg = None

        lat, named, info = run_interleaved(backends, queries)
        entry["timing"] = info
        nvol = [len(q.volumes) for q in queries]
        npairs = [len(p) for p in named["forewarn"]]
        for b in backends:
            entry[b.name] |= latency_stats(lat[b.name], sum(lat[b.name]))
            entry[b.name]["latency_model"] = latency_model(lat[b.name], nvol, npairs)
            entry[b.name]["slowest"] = slowest(lat[b.name], queries, npairs)
            if isinstance(b, STRtreeBackend | PostGISBackend):
                entry[b.name]["buffer_only"] = latency_stats(b.buffer_s, sum(b.buffer_s))
            print(f"{b.name}: { {k: v for k, v in entry[b.name].items() if k not in ('plan', 'slowest')} }",
                  flush=True)
        if pg is not None:
            entry["postgis"]["memory"] |= pg.close()
            entry["forewarn_over_postgis_qps"] = round(
                entry["forewarn"]["queries_per_s"] / entry["postgis"]["queries_per_s"], 2)
        records_lat = []
        for q in fw.prepare(queries):  # the same queries again, untimed above: decided pairs + their records
            t0 = time.perf_counter()
            find_conflicts(q, fw.air, measure=False).records()
            records_lat.append(time.perf_counter() - t0)
        entry["forewarn"]["with_records"] = latency_stats(records_lat, sum(records_lat))
        entry["forewarn"]["held_records"] = fw.air.operations.held
        print(f"forewarn with records: {entry['forewarn']['with_records']}", flush=True)
        if n == sizes[-1] and not args.no_profile:
            print("profiling detect() ...", flush=True)
            doc["profile"] = profile_forewarn(fw.air, fw.prepare(queries)) | {"n": n}
            doc["profile_summary"] = profile_summary(doc["profile"], n)
            print(doc["profile_summary"], flush=True)
        del backends, fw, st, pg
        trim_memory()
        entry["pairs"] = compare(named)
        entry["pairs"]["per_query_op_mean"] = round(float(np.mean(npairs)), 2)
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
    write_section(args.markdown, SECTION_TITLE, render_markdown(doc))


if __name__ == "__main__":
    raise SystemExit(main())
