"""Tactical conflict prediction between live tracks: closest point of approach (CPA) within a look-ahead.

Every track is extrapolated along a straight line at its current ground speed, true track and vertical speed
(the state-based baseline). Two tracks of different groups (parties) are **in conflict** when, at some time
``t`` in ``[0, lookahead_s)``, they are both closer than the horizontal minimum and closer than the vertical
minimum of their pair of groups: ``tin < tout``, ``tout > 0`` and ``tin < lookahead_s``, where ``(tin, tout)`` is
the intersection of the open intervals in which the horizontal distance is under ``horizontal_m - 0.01`` and the
altitude difference is under ``vertical_m - 0.01`` (metres): the boundary rule of :mod:`forewarn.units`, so that
aircraft on adjacent flight levels (exactly 1,000 ft = 304.8 m apart, however FL x 100 x 0.3048 rounds) are
separated under a 1,000 ft minimum, and 999 ft apart are not. Pairs already in loss of separation are conflicts
(``t_los_s == 0``) as long as they have not separated yet. Longitudes must lie in [-180, 180] and latitudes in
[-90, 90] (``ValueError`` otherwise).

Units and datums: latitude/longitude in WGS84 degrees, altitudes in metres (compared as given; see
:mod:`forewarn.tracks.model`), speeds in metres per second, angles in degrees clockwise from true north, times in
seconds from the moment the state vectors describe, distances in metres.

Two distance models:

``model="geodesic"`` (default)
    Each track's surface point (WGS84 ellipsoid, height 0, through pyproj) and horizontal velocity vector
    (east/north at its own position) are expressed in Earth-centred Earth-fixed (ECEF) coordinates. For each pair,
    relative position and relative velocity are projected onto the horizontal plane at the pair's midpoint (normal
    = the mean of the two ellipsoid normals), where the closest approach is solved exactly. This is a local
    tangent-plane (ENU) projection per pair: it has no meridian-convergence or longitude-scale error and works
    across the antimeridian and near the poles. Error against ``pyproj.Geod`` (WGS84 geodesics): the distance
    between two points is off by about ``(d / R)^2 / 24`` relative (4e-5 at d = 200 km, 4e-7 at 5 NM); flying
    the tangent line instead of the geodesic shortens a track's progress by about ``s^3 / (3 R^2)`` (under 4 m
    after 300 s at 500 kt, alike for both aircraft of a pair).
    Measured by the tests: the CPA distance of two aircraft flying pyproj geodesics for up to 300 s at
    up to 260 m/s, anywhere up to 88 degrees of latitude, is within 5 m of pyproj's (1.1 m worst seen in 3,000
    random encounters), i.e. well under 0.1 % of a 5 NM minimum.
    Horizontal distances are measured on the ellipsoid surface (ground projection), not at flight level.

``model="bluesky"``
    BlueSky 1.1.1's flat-earth model and conflict definition, mirroring
    ``bluesky.traffic.asas.statebased.StateBased.detect`` formula by formula (spherical Earth of radius
    6,371,000 m, equirectangular ``kwikqdrdist`` per pair at the pair's mean latitude, the clamps of relative
    speeds under 1e-3 m/s and vertical speed differences under 1e-6 m/s, ``tin <= tout``, ``tout > 0``,
    ``tin < lookahead``), with BlueSky's strict comparisons (no boundary tolerance). It reports the same pairs as
    ``StateBased.detect`` and its compiled twin ``cstatebased.detect`` (checked by the tests on random traffic),
    with one deliberate difference: when the vertical speeds differ by under 1e-6 m/s the vertical test is
    ``|dalt| < vertical_m`` throughout (as the C++ ``detect_ver``), symmetric in the two aircraft, where NumPy's
    clamp of the difference to +1e-6 m/s makes a pair within ``lookahead x 1e-6`` m of the minimum a conflict in
    one input order and not the other. One global minima only. See docs/tracks.md for where BlueSky's two
    detectors differ from each other (antimeridian, zero relative speed).

Scaling: a broad phase (:mod:`forewarn.tracks.broadphase`, a uniform grid) keeps only the pairs whose swept boxes
(position over a time slice of the look-ahead, padded by half the minima; altitude swept by the vertical speed)
overlap in the same slice; the narrow phase runs over those candidate pairs in chunks (numba kernels, one pass, no
temporaries). Memory is O(N + candidate pairs), never N x N.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numba
import numpy as np
import numpy.typing as npt
import pyproj

from forewarn.tracks.broadphase import candidate_pairs
from forewarn.tracks.model import PositionBatch
from forewarn.units import DISTANCE_TOLERANCE_M, FOOT_M, NAUTICAL_MILE_M

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

Model = Literal["geodesic", "bluesky"]

NM_M = NAUTICAL_MILE_M
"""One nautical mile in metres (exact)."""
FT_M = FOOT_M
"""One foot in metres (exact)."""
BLUESKY_EARTH_RADIUS_M = 6_371_000.0
"""Radius of BlueSky's spherical Earth (``bluesky.tools.geo.kwikqdrdist_matrix``)."""

SLICE_PER_MINIMUM = 2.0
"""Broad phase: the look-ahead is cut into time slices of about this many horizontal minima flown at the top speed
(boxes of one slice per track; a pair is a candidate when its boxes of one slice overlap)."""
MAX_SLICES = 2
"""At most this many time slices (more slices mean fewer candidate pairs but more grid entries; measured on 10k dense
and 100k constant-density traffic, 2 is best overall: 4 helps at 10k and costs twice as much at 100k)."""

CHUNK_PAIRS = 1 << 18
"""Candidate pairs evaluated per vectorised chunk (bounds the narrow phase's temporary memory)."""

_MIN_REL_SPEED2 = 1e-12  # (m/s)^2: below this the horizontal relative motion is treated as none (geodesic model)
_MIN_REL_VS = 1e-9  # m/s: below this the vertical relative motion is treated as none (geodesic model)
_PAD_M = 1.0  # metres added to every broad-phase box: rounding margin


@dataclass(frozen=True, slots=True)
class Minima:
    """Separation minima of a pair of tracks: horizontal and vertical distance, metres."""

    horizontal_m: float = 5 * NM_M
    vertical_m: float = 1000 * FT_M

    def __post_init__(self) -> None:
        object.__setattr__(self, "horizontal_m", float(self.horizontal_m))
        object.__setattr__(self, "vertical_m", float(self.vertical_m))
        if not (self.horizontal_m > 0 and self.vertical_m > 0 and math.isfinite(self.horizontal_m)
                and math.isfinite(self.vertical_m)):
            raise ValueError(f"minima must be positive and finite, got {self.horizontal_m} m / {self.vertical_m} m")


DEFAULT_MINIMA = Minima()
"""5 NM (9,260 m) horizontally, 1,000 ft (304.8 m) vertically."""

MinimaSpec = (
    Minima
    | Mapping[tuple[int, int], Minima | tuple[float, float] | None]
    | Callable[[int, int], Minima | tuple[float, float] | None]
)
"""One minima for every pair; or a table (group_a, group_b) -> minima (either order; missing pairs get
``default_minima``); or a callable (group_a, group_b) -> minima. ``None`` means: that pair of groups is not checked."""


@dataclass(frozen=True)
class TrackState:
    """Current state vectors of N tracks, one row per track (units and datums in the module docstring).

    ``group``: the party (or any grouping) of each track as an int; pairs within one group are never conflicts.
    ``track_id``: optional labels (object array), carried along for callers.
    """

    lat_deg: FloatArray
    lon_deg: FloatArray
    alt_m: FloatArray
    gs_mps: FloatArray
    track_deg: FloatArray
    vs_mps: FloatArray
    group: IntArray
    track_id: npt.NDArray[np.object_] | None = None

    def __post_init__(self) -> None:
        n = len(self.lat_deg)
        for name in ("lon_deg", "alt_m", "gs_mps", "track_deg", "vs_mps", "group"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"column {name} has {len(getattr(self, name))} rows, expected {n}")
        if self.track_id is not None and len(self.track_id) != n:
            raise ValueError(f"column track_id has {len(self.track_id)} rows, expected {n}")

    def __len__(self) -> int:
        return len(self.lat_deg)

    @classmethod
    def from_arrays(
        cls, lat_deg: npt.ArrayLike, lon_deg: npt.ArrayLike, alt_m: npt.ArrayLike, gs_mps: npt.ArrayLike,
        track_deg: npt.ArrayLike, vs_mps: npt.ArrayLike, group: npt.ArrayLike | None = None,
        track_id: npt.ArrayLike | None = None,
    ) -> TrackState:
        """State from array-likes (float64 copies); ``group`` defaults to every track its own group."""
        lat = np.asarray(lat_deg, dtype=np.float64)
        grp = np.arange(len(lat), dtype=np.int64) if group is None else np.asarray(group, dtype=np.int64)
        return cls(lat, np.asarray(lon_deg, dtype=np.float64), np.asarray(alt_m, dtype=np.float64),
                   np.asarray(gs_mps, dtype=np.float64), np.asarray(track_deg, dtype=np.float64),
                   np.asarray(vs_mps, dtype=np.float64), grp,
                   None if track_id is None else np.asarray(track_id, dtype=object))

    @classmethod
    def from_batch(cls, batch: PositionBatch, group_of: Mapping[str, int] | Callable[[str], int],
                   at_s: float | None = None) -> TrackState:
        """The latest report of each track of ``batch`` (largest ``t_s``), labelled by ``track_id``.

        ``group_of`` maps a track id to its group (party index). With ``at_s`` (POSIX seconds, UTC), each report
        is first extrapolated to that instant along its geodesic (pyproj) at its ground speed and track, and its
        altitude by its vertical speed. A missing vertical speed (NaN) counts as level flight; tracks missing a
        position, altitude, ground speed or track are dropped (they cannot be extrapolated).
        """
        if len(batch) == 0:
            return cls.from_arrays([], [], [], [], [], [], [], np.empty(0, dtype=object))
        order = np.lexsort((batch.t_s, batch.track_id.astype(str)))
        ids = batch.track_id[order].astype(str)
        last = np.ones(len(order), dtype=bool)
        last[:-1] = ids[1:] != ids[:-1]
        rows = order[last]
        b = batch.take(rows)
        vs = np.where(np.isnan(b.vs_mps), 0.0, b.vs_mps)
        ok = np.isfinite(b.lat_deg) & np.isfinite(b.lon_deg) & np.isfinite(b.alt_m) & np.isfinite(b.gs_mps) & \
            np.isfinite(b.track_deg)
        lat, lon, alt, gs, trk, vs = b.lat_deg[ok], b.lon_deg[ok], b.alt_m[ok], b.gs_mps[ok], b.track_deg[ok], vs[ok]
        if at_s is not None and len(lat):
            dt = at_s - b.t_s[ok]
            lon, lat, back = _geod().fwd(lon, lat, trk, gs * dt)
            trk = np.where(gs * dt != 0.0, (np.asarray(back) + 180.0) % 360.0, trk)
            alt = alt + vs * dt
        lookup = group_of.__getitem__ if isinstance(group_of, Mapping) else group_of
        track_ids = b.track_id[ok]
        return cls.from_arrays(lat, lon, alt, gs, trk, vs, [lookup(str(t)) for t in track_ids], track_ids)


@dataclass(frozen=True)
class PredictedConflicts:
    """Predicted conflicts, one row per pair of tracks, columnar, sorted by ``(i, j)``.

    ``i < j``: row indices into the :class:`TrackState`. ``t_los_s``: time to loss of separation, seconds (0 when
    already lost). ``t_cpa_s``: time of the horizontal closest point of approach within ``[0, lookahead_s]``,
    seconds. ``h_cpa_m``: horizontal distance at that time, metres. ``v_cpa_m``: absolute vertical separation at that
    time, metres. ``los_now``: already in loss of separation now (horizontally and vertically).
    ``horizontal_m``/``vertical_m``: the minima applied to the pair, metres.
    """

    i: IntArray
    j: IntArray
    t_los_s: FloatArray
    t_cpa_s: FloatArray
    h_cpa_m: FloatArray
    v_cpa_m: FloatArray
    los_now: BoolArray
    horizontal_m: FloatArray
    vertical_m: FloatArray

    def __len__(self) -> int:
        return len(self.i)

    def pairs(self) -> set[tuple[int, int]]:
        """The conflicting pairs as a set of ``(i, j)``, ``i < j``."""
        return set(zip(self.i.tolist(), self.j.tolist(), strict=True))

    @classmethod
    def empty(cls) -> PredictedConflicts:
        """No conflicts."""
        f = np.empty(0, dtype=np.float64)
        k = np.empty(0, dtype=np.int64)
        return cls(k, k.copy(), f, f.copy(), f.copy(), f.copy(), np.empty(0, dtype=bool), f.copy(), f.copy())

    @classmethod
    def concat(cls, parts: list[PredictedConflicts]) -> PredictedConflicts:
        """Rows of all ``parts``, in order."""
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in cls.__dataclass_fields__))


# ---------------------------------------------------------------------------------------------------- minima


@dataclass(frozen=True)
class _MinimaTable:
    """Minima per pair of group codes (NaN: not checked) and the largest of them (for the broad phase)."""

    h: FloatArray | float
    v: FloatArray | float
    h_max: float
    v_max: float

    def lookup(self, ci: IntArray, cj: IntArray) -> tuple[FloatArray, FloatArray]:
        if isinstance(self.h, np.ndarray) and isinstance(self.v, np.ndarray):
            return self.h[ci, cj], self.v[ci, cj]
        return np.full(len(ci), float(self.h)), np.full(len(ci), float(self.v))


def _as_pair(value: Minima | tuple[float, float] | None) -> tuple[float, float]:
    if value is None:
        return math.nan, math.nan
    m = value if isinstance(value, Minima) else Minima(float(value[0]), float(value[1]))
    return m.horizontal_m, m.vertical_m


def _minima_table(minima: MinimaSpec, groups: IntArray, default: Minima) -> tuple[_MinimaTable, IntArray]:
    """The minima table over the distinct groups, and each track's group code (index into the table)."""
    values, codes = np.unique(groups, return_inverse=True)
    codes = codes.astype(np.int64)
    if isinstance(minima, Minima):
        return _MinimaTable(minima.horizontal_m, minima.vertical_m, minima.horizontal_m, minima.vertical_m), codes
    g = len(values)
    if g > 4096:
        raise ValueError(f"minima per pair of groups need at most 4096 distinct groups, got {g}")
    h = np.full((g, g), math.nan)
    v = np.full((g, g), math.nan)
    ids = values.tolist()
    for a in range(g):
        for b in range(a + 1, g):
            ga, gb = int(ids[a]), int(ids[b])
            if isinstance(minima, Mapping):
                value = minima[(ga, gb)] if (ga, gb) in minima else minima.get((gb, ga), default)
            else:
                value = minima(ga, gb)
            hv = _as_pair(value)
            h[a, b] = h[b, a] = hv[0]
            v[a, b] = v[b, a] = hv[1]
    h_max = float(np.nanmax(h)) if np.any(np.isfinite(h)) else 0.0
    v_max = float(np.nanmax(v)) if np.any(np.isfinite(v)) else 0.0
    return _MinimaTable(h, v, h_max, v_max), codes


# ---------------------------------------------------------------------------------------------------- geometry


@lru_cache(maxsize=1)
def _geod() -> pyproj.Geod:
    return pyproj.Geod(ellps="WGS84")


@lru_cache(maxsize=1)
def _to_ecef() -> pyproj.Transformer:
    return pyproj.Transformer.from_crs("EPSG:4979", "EPSG:4978", always_xy=True)


def surface_ecef(lat_deg: FloatArray, lon_deg: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """ECEF position (m), local up and horizontal frames of points on the WGS84 ellipsoid (height 0).

    Returns ``(P, up, (east, north))`` as arrays of shape (N, 3), (N, 3) and (2, N, 3): unit vectors.
    """
    x, y, z = _to_ecef().transform(lon_deg, lat_deg, np.zeros_like(lat_deg))
    p = np.stack([np.asarray(x), np.asarray(y), np.asarray(z)], axis=1)
    phi = np.radians(lat_deg)
    lam = np.radians(lon_deg)
    sp, cp, sl, cl = np.sin(phi), np.cos(phi), np.sin(lam), np.cos(lam)
    up = np.stack([cp * cl, cp * sl, sp], axis=1)
    east = np.stack([-sl, cl, np.zeros_like(sl)], axis=1)
    north = np.stack([-sp * cl, -sp * sl, cp], axis=1)
    return p, up, np.stack([east, north])


def _frame(up: FloatArray) -> FloatArray:
    """Rows: an orthonormal basis whose third vector is the (normalised) mean of ``up``, or ECEF's own axes."""
    mean = up.mean(axis=0) if len(up) else np.zeros(3)
    norm = float(np.linalg.norm(mean))
    if norm < 1e-3:
        return np.eye(3)
    w = mean / norm
    helper = np.array([0.0, 0.0, 1.0]) if abs(w[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    a = np.cross(helper, w)
    a /= np.linalg.norm(a)
    b = np.cross(w, a)
    return np.stack([a, b, w])


def _ground_velocity(state: TrackState, frames: FloatArray) -> FloatArray:
    trk = np.radians(state.track_deg)
    ve = state.gs_mps * np.sin(trk)
    vn = state.gs_mps * np.cos(trk)
    out: FloatArray = ve[:, None] * frames[0] + vn[:, None] * frames[1]
    return out


@dataclass(frozen=True)
class _Prepared:
    """Per-track quantities of one model, computed once per pass (O(N))."""

    model: Model
    p: FloatArray  # geodesic: ECEF surface position (N, 3); bluesky: unused
    up: FloatArray
    vel: FloatArray  # geodesic: ECEF ground velocity (N, 3); bluesky: (east, north) m/s (N, 2)
    box_lo: FloatArray  # (slices, N, axes)
    box_hi: FloatArray
    grid_dims: int


def _slices(state: TrackState, table: _MinimaTable, lookahead_s: float) -> FloatArray:
    """Time slice edges (s) for the broad phase: about one slice per minimum's width flown, 1 to MAX_SLICES."""
    vmax = float(np.max(state.gs_mps)) if len(state) else 0.0
    k = math.ceil(vmax * lookahead_s / (SLICE_PER_MINIMUM * max(table.h_max, 1.0)))
    return np.linspace(0.0, lookahead_s, min(MAX_SLICES, max(1, k)) + 1)


def _swept(start: FloatArray, rate: FloatArray, edges: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Per slice (rows) and track (columns): the range of ``start + rate * t`` for t within the slice."""
    a = start[None, :] + rate[None, :] * edges[:-1, None]
    b = start[None, :] + rate[None, :] * edges[1:, None]
    return np.minimum(a, b), np.maximum(a, b)


def _prepare(state: TrackState, table: _MinimaTable, lookahead_s: float, model: Model) -> _Prepared:
    """Per-track quantities and broad-phase boxes of shape (slices, N, axes)."""
    t = lookahead_s
    edges = _slices(state, table, t)
    h_pad = 0.5 * table.h_max + _PAD_M
    v_pad = 0.5 * table.v_max + _PAD_M
    z_lo, z_hi = _swept(state.alt_m, state.vs_mps, edges)
    z_lo -= v_pad
    z_hi += v_pad
    vmax = float(np.max(state.gs_mps)) if len(state) else 0.0
    if model == "geodesic":
        p, up, frames = surface_ecef(state.lat_deg, state.lon_deg)
        vel = _ground_velocity(state, frames)
        # The broad phase boxes the 3-D (ECEF) motion; the narrow phase drops its component along the midpoint
        # normal. Tracks that come within the minimum started at most `reach` apart, so their normals differ by at
        # most reach / R_min and each velocity rises off the midpoint plane by at most vmax sin(reach / 2 R_min);
        # the surface chord itself is within 3e-5 d^2 / R of that plane on WGS84 (bound used: 1e-3 d^2 / R).
        r_min = 6_335_000.0
        reach = table.h_max + 2.0 * vmax * t
        tilt = min(1.0, reach / (2.0 * r_min))
        slack = (2.0 * vmax * t * tilt + 1e-3 * reach * reach / r_min) * 1.01 + 1e-6 * reach
        pad = h_pad + 0.5 * slack
        # boxes in a frame rotated so that z is the mean normal of the tracks: grid on x, y and altitude (for a
        # regional picture z varies little); z is still tested. Any orthonormal frame keeps the boxes conservative.
        rot = _frame(up)
        q = p @ rot.T
        w = vel @ rot.T
        axes = [_swept(q[:, k], w[:, k], edges) for k in range(3)]
        lo = np.stack([axes[0][0] - pad, axes[1][0] - pad, z_lo, axes[2][0] - pad], axis=2)
        hi = np.stack([axes[0][1] + pad, axes[1][1] + pad, z_hi, axes[2][1] + pad], axis=2)
        return _Prepared(model, p, up, vel, lo, hi, 3)
    # bluesky: x = longitude (radians, unwrapped) scaled per pair by the cosine of the mean latitude, y = north m.
    re = BLUESKY_EARTH_RADIUS_M
    trk = np.radians(state.track_deg)
    u = state.gs_mps * np.sin(trk)
    v = state.gs_mps * np.cos(trk)
    y_lo, y_hi = _swept(re * np.radians(state.lat_deg), v, edges)
    # a partner within reach differs in latitude by at most reach_lat, so the pair's mean latitude is within
    # reach_lat / 2 of this track's: bound its cosine from below and above
    reach_lat = (table.h_max + 2.0 * vmax * t) / re * 1.001 + 1e-9
    lat = np.radians(state.lat_deg)
    lat_a = np.clip(lat - reach_lat / 2.0, -np.pi / 2, np.pi / 2)
    lat_b = np.clip(lat + reach_lat / 2.0, -np.pi / 2, np.pi / 2)
    c_lo = np.minimum(np.cos(lat_a), np.cos(lat_b))
    c_hi = np.where((lat_a <= 0.0) & (lat_b >= 0.0), 1.0, np.maximum(np.cos(lat_a), np.cos(lat_b)))
    polar = c_lo < 1e-6
    c_lo = np.maximum(c_lo, 1e-6)
    lam = np.radians(state.lon_deg)
    # x(t) = lam + u t / (re c) for t in the slice and c in [c_lo, c_hi]: extremes at the corners
    lo_a, hi_a = _swept(lam, u / (re * c_lo), edges)
    lo_b, hi_b = _swept(lam, u / (re * c_hi), edges)
    x_pad = (table.h_max / 2.0 + _PAD_M) / (re * c_lo)
    x_lo = np.minimum(lo_a, lo_b) - x_pad
    x_hi = np.maximum(hi_a, hi_b) + x_pad
    # near a pole the longitude reach is unbounded: cover every longitude
    x_lo = np.where(polar, -np.pi, x_lo)
    x_hi = np.where(polar, np.pi, x_hi)
    lo = np.stack([x_lo, y_lo - h_pad, z_lo], axis=2)
    hi = np.stack([x_hi, y_hi + h_pad, z_hi], axis=2)
    return _Prepared(model, np.empty((0, 3)), np.empty((0, 3)), np.stack([u, v], axis=1), lo, hi, 3)


def _bluesky_candidates(prep: _Prepared, codes: IntArray) -> tuple[IntArray, IntArray]:
    """Broad phase in BlueSky's frame; boxes crossing the antimeridian are entered again shifted by 360 degrees."""
    lo, hi = prep.box_lo, prep.box_hi
    n = lo.shape[1]
    west = np.nonzero(np.any(lo[:, :, 0] < -np.pi, axis=0))[0]
    east = np.nonzero(np.any(hi[:, :, 0] > np.pi, axis=0))[0]
    if len(west) == 0 and len(east) == 0:
        return candidate_pairs(lo, hi, codes, grid_dims=prep.grid_dims)
    shift = np.zeros((1, 1, lo.shape[2]))
    shift[0, 0, 0] = 2.0 * np.pi
    idx = np.concatenate([np.arange(n), west, east])
    all_lo = np.concatenate([lo, lo[:, west] + shift, lo[:, east] - shift], axis=1)
    all_hi = np.concatenate([hi, hi[:, west] + shift, hi[:, east] - shift], axis=1)
    # every box its own group here (a box may meet its own copy); pairs are mapped back and filtered below
    copy_codes = np.concatenate([codes, codes[west], codes[east]])
    ci, cj = candidate_pairs(all_lo, all_hi, np.arange(len(idx), dtype=np.int64), grid_dims=prep.grid_dims)
    i, j = idx[ci], idx[cj]
    keep = (i != j) & (copy_codes[ci] != copy_codes[cj])
    i, j = np.minimum(i[keep], j[keep]), np.maximum(i[keep], j[keep])
    key = np.unique(i * n + j)
    return key // n, key % n


# ---------------------------------------------------------------------------------------------------- narrow phase


# Kernels over candidate pairs (numba, one pass, no temporaries): each writes the conflicting pairs' rows to the
# front of the output arrays and returns how many. Columns of `out`: t_los, t_cpa, h_cpa, v_cpa, hmin, vmin.


@numba.njit(cache=True, nogil=True)
def _narrow_geodesic(
    p: FloatArray, up: FloatArray, vel: FloatArray, alt: FloatArray, vs: FloatArray, ci: IntArray, cj: IntArray,
    hmin: FloatArray, vmin: FloatArray, t: float, tol: float, oi: IntArray, oj: IntArray, out: FloatArray,
    los: BoolArray,
) -> int:  # pragma: no cover - compiled by numba (cross-checked against predict_conflicts_brute)
    m = 0
    for k in range(len(ci)):
        i = ci[k]
        j = cj[k]
        r = hmin[k] - tol  # the boundary rule: closer than the minimum iff gap < minimum - tol
        vm = vmin[k] - tol
        if not (r > 0.0 and vm > 0.0):  # NaN (this pair of groups is not checked) or a minimum under tol
            continue
        # altitude first: cheapest rejection
        dz = alt[j] - alt[i]
        dvz = vs[j] - vs[i]
        if abs(dvz) > _MIN_REL_VS:
            t1 = (-vm - dz) / dvz
            t2 = (vm - dz) / dvz
            tin_v = min(t1, t2)
            tout_v = max(t1, t2)
        elif abs(dz) < vm:
            tin_v = -np.inf
            tout_v = np.inf
        else:
            continue
        if not (tout_v > 0.0 and tin_v < t):
            continue
        m0 = up[i, 0] + up[j, 0]
        m1 = up[i, 1] + up[j, 1]
        m2 = up[i, 2] + up[j, 2]
        norm = np.sqrt(m0 * m0 + m1 * m1 + m2 * m2)
        m0 /= norm
        m1 /= norm
        m2 /= norm
        d0 = p[j, 0] - p[i, 0]
        d1 = p[j, 1] - p[i, 1]
        d2 = p[j, 2] - p[i, 2]
        w0 = vel[j, 0] - vel[i, 0]
        w1 = vel[j, 1] - vel[i, 1]
        w2 = vel[j, 2] - vel[i, 2]
        dm = d0 * m0 + d1 * m1 + d2 * m2
        wm = w0 * m0 + w1 * m1 + w2 * m2
        d0 -= dm * m0
        d1 -= dm * m1
        d2 -= dm * m2
        w0 -= wm * m0
        w1 -= wm * m1
        w2 -= wm * m2
        a = w0 * w0 + w1 * w1 + w2 * w2
        b = d0 * w0 + d1 * w1 + d2 * w2
        c = d0 * d0 + d1 * d1 + d2 * d2
        if a > _MIN_REL_SPEED2:
            tcpa = -b / a
            dcpa2 = max(c - b * b / a, 0.0)
            if dcpa2 >= r * r:
                continue
            half = np.sqrt(max(r * r - dcpa2, 0.0) / a)
            tin_h = tcpa - half
            tout_h = tcpa + half
        else:
            if c >= r * r:
                continue
            tcpa = 0.0
            tin_h = -np.inf
            tout_h = np.inf
        tin = max(tin_h, tin_v)
        tout = min(tout_h, tout_v)
        if not (tin < tout and tout > 0.0 and tin < t):
            continue
        tc = min(max(tcpa, 0.0), t)
        oi[m] = i
        oj[m] = j
        out[m, 0] = max(tin, 0.0)
        out[m, 1] = tc
        out[m, 2] = np.sqrt(max(c + 2.0 * b * tc + a * tc * tc, 0.0))
        out[m, 3] = abs(dz + dvz * tc)
        out[m, 4] = hmin[k]
        out[m, 5] = vmin[k]
        los[m] = c < r * r and abs(dz) < vm
        m += 1
    return m


@numba.njit(cache=True, nogil=True)
def _narrow_bluesky(
    lat: FloatArray, lon: FloatArray, uv: FloatArray, alt: FloatArray, vs: FloatArray, ci: IntArray, cj: IntArray,
    hmin: FloatArray, vmin: FloatArray, t: float, oi: IntArray, oj: IntArray, out: FloatArray, los: BoolArray,
) -> int:  # pragma: no cover - compiled by numba (cross-checked against BlueSky and predict_conflicts_brute)
    # Element [i, j] of StateBased.detect's matrices: the same operations in the same order (see its source).
    re = BLUESKY_EARTH_RADIUS_M
    deg = np.pi / 180.0
    m = 0
    for k in range(len(ci)):
        i = ci[k]
        j = cj[k]
        rpz = hmin[k]
        hpz = vmin[k]
        dalt = alt[j] - alt[i]
        dvs_raw = vs[j] - vs[i]
        if abs(dvs_raw) < 1e-6:
            # symmetric in i, j (as BlueSky's C++ detect_ver): in vertical conflict throughout iff |dalt| < hpz.
            # NumPy's clamp to +1e-6 m/s would make a pair within lookahead x 1e-6 m of hpz depend on input order.
            if not abs(dalt) < hpz:
                continue
            tcrosshi = -np.inf
            tcrosslo = np.inf
        else:
            tcrosshi = (dalt + hpz) / -dvs_raw
            tcrosslo = (dalt - hpz) / -dvs_raw
        # tinconf >= tinver and toutconf <= toutver: pairs failing these fail BlueSky's test too (cheap first)
        if not (max(tcrosshi, tcrosslo) > 0.0 and min(tcrosshi, tcrosslo) < t):
            continue
        dlat = (lat[j] - lat[i]) * deg
        dlon = (((lon[j] - lon[i]) + 180.0) % 360.0 - 180.0) * deg
        cavelat = np.cos((lat[j] + lat[i]) * deg * 0.5)
        dangle = np.sqrt(dlat * dlat + (dlon * dlon) * (cavelat * cavelat))
        dist = re * dangle / NM_M
        qdr = (np.arctan2(dlon * cavelat, dlat) / deg) % 360.0
        dist = dist * NM_M
        qdrrad = qdr * deg
        dx = dist * np.sin(qdrrad)
        dy = dist * np.cos(qdrrad)
        du = uv[j, 0] - uv[i, 0]
        dv = uv[j, 1] - uv[i, 1]
        dv2 = du * du + dv * dv
        if abs(dv2) < 1e-6:
            dv2 = 1e-6
        vrel = np.sqrt(dv2)
        tcpa = -(du * dx + dv * dy) / dv2
        dcpa2 = abs(dist * dist - tcpa * tcpa * dv2)
        r2 = rpz * rpz
        if not dcpa2 < r2:
            continue
        dtinhor = np.sqrt(max(0.0, r2 - dcpa2)) / vrel
        tinhor = tcpa - dtinhor
        touthor = tcpa + dtinhor
        tinconf = max(min(tcrosshi, tcrosslo), tinhor)
        toutconf = min(max(tcrosshi, tcrosslo), touthor)
        if not (tinconf <= toutconf and toutconf > 0.0 and tinconf < t):
            continue
        tc = min(max(tcpa, 0.0), t)
        oi[m] = i
        oj[m] = j
        out[m, 0] = max(tinconf, 0.0)
        out[m, 1] = tc
        out[m, 2] = np.hypot(dx + du * tc, dy + dv * tc)
        out[m, 3] = abs(dalt + dvs_raw * tc)
        out[m, 4] = rpz
        out[m, 5] = hpz
        los[m] = dist < rpz and abs(dalt) < hpz
        m += 1
    return m


# ---------------------------------------------------------------------------------------------------- public


def _check(state: TrackState, lookahead_s: float, model: str) -> None:
    if model not in ("geodesic", "bluesky"):
        raise ValueError(f"model must be 'geodesic' or 'bluesky', got {model!r}")
    if not (lookahead_s > 0 and math.isfinite(lookahead_s)):
        raise ValueError(f"lookahead_s must be positive and finite, got {lookahead_s}")
    for name in ("lat_deg", "lon_deg", "alt_m", "gs_mps", "track_deg", "vs_mps"):
        if not np.all(np.isfinite(getattr(state, name))):
            raise ValueError(f"{name} has missing (NaN) or infinite values: drop those tracks first")
    if np.any(np.abs(state.lat_deg) > 90.0):
        bad = float(state.lat_deg[np.argmax(np.abs(state.lat_deg))])
        raise ValueError(f"lat_deg must lie in [-90, 90] (WGS84 degrees), got {bad}")
    if np.any(np.abs(state.lon_deg) > 180.0):
        bad = float(state.lon_deg[np.argmax(np.abs(state.lon_deg))])
        raise ValueError(f"lon_deg must lie in [-180, 180] (WGS84 degrees), got {bad}: wrap longitudes first")
    if np.any(state.gs_mps < 0.0):
        raise ValueError("gs_mps must be >= 0")


def _resolve(state: TrackState, minima: MinimaSpec, default_minima: Minima, model: str
             ) -> tuple[_MinimaTable, IntArray]:
    if model == "bluesky" and not isinstance(minima, Minima):
        raise ValueError("model='bluesky' takes one global Minima (BlueSky has no minima per pair of groups)")
    return _minima_table(minima, np.asarray(state.group, dtype=np.int64), default_minima)


def predict_conflicts(
    state: TrackState,
    minima: MinimaSpec = DEFAULT_MINIMA,
    *,
    lookahead_s: float = 300.0,
    model: Model = "geodesic",
    default_minima: Minima = DEFAULT_MINIMA,
) -> PredictedConflicts:
    """Conflicts between tracks of different groups within ``lookahead_s`` seconds (definition in the module doc).

    ``minima``: one :class:`Minima` (metres), or per pair of groups a table or callable (see :data:`MinimaSpec`;
    ``default_minima`` fills pairs missing from a table). ``model``: ``"geodesic"`` (WGS84, default) or
    ``"bluesky"`` (BlueSky's flat-earth detector, reproduced exactly; one global minima).
    Cost: O(N log N + candidate pairs); memory O(N + candidate pairs).
    """
    _check(state, lookahead_s, model)
    table, codes = _resolve(state, minima, default_minima, model)
    if len(state) < 2 or table.h_max <= 0.0:
        return PredictedConflicts.empty()
    prep = _prepare(state, table, lookahead_s, model)
    if model == "bluesky":
        ci, cj = _bluesky_candidates(prep, codes)
    else:
        ci, cj = candidate_pairs(prep.box_lo, prep.box_hi, codes, grid_dims=prep.grid_dims)
    parts: list[PredictedConflicts] = []
    for start in range(0, len(ci), CHUNK_PAIRS):
        i = ci[start:start + CHUNK_PAIRS]
        j = cj[start:start + CHUNK_PAIRS]
        hmin, vmin = table.lookup(codes[i], codes[j])
        oi = np.empty(len(i), dtype=np.int64)
        oj = np.empty(len(i), dtype=np.int64)
        cols = np.empty((len(i), 6), dtype=np.float64)
        los = np.empty(len(i), dtype=np.bool_)
        if model == "geodesic":
            m = _narrow_geodesic(prep.p, prep.up, prep.vel, state.alt_m, state.vs_mps, i, j, hmin, vmin,
                                 lookahead_s, DISTANCE_TOLERANCE_M, oi, oj, cols, los)
        else:
            m = _narrow_bluesky(state.lat_deg, state.lon_deg, prep.vel, state.alt_m, state.vs_mps, i, j, hmin, vmin,
                                lookahead_s, oi, oj, cols, los)
        parts.append(PredictedConflicts(oi[:m].copy(), oj[:m].copy(), cols[:m, 0].copy(), cols[:m, 1].copy(),
                                        cols[:m, 2].copy(), cols[:m, 3].copy(), los[:m].copy(), cols[:m, 4].copy(),
                                        cols[:m, 5].copy()))
    out = PredictedConflicts.concat(parts)
    order = np.lexsort((out.j, out.i))
    return PredictedConflicts(*(getattr(out, name)[order] for name in PredictedConflicts.__dataclass_fields__))


def predict_conflicts_brute(
    state: TrackState,
    minima: MinimaSpec = DEFAULT_MINIMA,
    *,
    lookahead_s: float = 300.0,
    model: Model = "geodesic",
    default_minima: Minima = DEFAULT_MINIMA,
) -> PredictedConflicts:
    """The same answer as :func:`predict_conflicts` by the obvious route: every pair, one at a time, scalar maths.

    O(N^2) time: for tests and small N only.
    """
    _check(state, lookahead_s, model)
    table, codes = _resolve(state, minima, default_minima, model)
    n = len(state)
    rows: list[tuple[int, int, float, float, float, float, bool, float, float]] = []
    if model == "geodesic":
        p, up, frames = surface_ecef(state.lat_deg, state.lon_deg)
        vel = _ground_velocity(state, frames)
    for i in range(n):
        for j in range(i + 1, n):
            if codes[i] == codes[j]:
                continue
            hm, vm = table.lookup(codes[i:i + 1], codes[j:j + 1])
            hmin, vmin = float(hm[0]), float(vm[0])
            if not (math.isfinite(hmin) and math.isfinite(vmin)):
                continue
            if model == "geodesic":
                row = _brute_geodesic_pair(state, p, up, vel, i, j, hmin - DISTANCE_TOLERANCE_M,
                                           vmin - DISTANCE_TOLERANCE_M, lookahead_s)
            else:
                row = _brute_bluesky_pair(state, i, j, hmin, vmin, lookahead_s)
            if row is not None:
                rows.append((i, j, *row, hmin, vmin))
    if not rows:
        return PredictedConflicts.empty()
    cols = list(zip(*rows, strict=True))
    f = [np.array(c, dtype=np.float64) for c in cols]
    return PredictedConflicts(np.array(cols[0], dtype=np.int64), np.array(cols[1], dtype=np.int64), f[2], f[3], f[4],
                              f[5], np.array(cols[6], dtype=bool), f[7], f[8])


def _brute_geodesic_pair(state: TrackState, p: FloatArray, up: FloatArray, vel: FloatArray, i: int, j: int,
                         hmin: float, vmin: float, t: float) -> tuple[float, float, float, float, bool] | None:
    """One pair by scalar maths; ``hmin``/``vmin`` are the effective minima (the agreed ones less the tolerance)."""
    if not (hmin > 0.0 and vmin > 0.0):
        return None
    m = [up[i][k] + up[j][k] for k in range(3)]
    norm = math.sqrt(sum(x * x for x in m))
    m = [x / norm for x in m]
    d = [p[j][k] - p[i][k] for k in range(3)]
    w = [vel[j][k] - vel[i][k] for k in range(3)]
    dm = sum(d[k] * m[k] for k in range(3))
    wm = sum(w[k] * m[k] for k in range(3))
    d = [d[k] - dm * m[k] for k in range(3)]
    w = [w[k] - wm * m[k] for k in range(3)]
    a = sum(x * x for x in w)
    b = sum(d[k] * w[k] for k in range(3))
    c = sum(x * x for x in d)
    if a > _MIN_REL_SPEED2:
        tcpa = -b / a
        dcpa2 = max(c - b * b / a, 0.0)
        if dcpa2 >= hmin * hmin:
            return None
        half = math.sqrt(max(hmin * hmin - dcpa2, 0.0) / a)
        tin_h, tout_h = tcpa - half, tcpa + half
    else:
        if c >= hmin * hmin:
            return None
        tcpa, tin_h, tout_h = 0.0, -math.inf, math.inf
    dz = float(state.alt_m[j] - state.alt_m[i])
    dvz = float(state.vs_mps[j] - state.vs_mps[i])
    if abs(dvz) > _MIN_REL_VS:
        t1, t2 = (-vmin - dz) / dvz, (vmin - dz) / dvz
        tin_v, tout_v = min(t1, t2), max(t1, t2)
    elif abs(dz) < vmin:
        tin_v, tout_v = -math.inf, math.inf
    else:
        return None
    tin, tout = max(tin_h, tin_v), min(tout_h, tout_v)
    if not (tin < tout and tout > 0.0 and tin < t):
        return None
    tc = min(max(tcpa, 0.0), t)
    h = math.sqrt(max(c + 2.0 * b * tc + a * tc * tc, 0.0))
    return max(tin, 0.0), tc, h, abs(dz + dvz * tc), c < hmin * hmin and abs(dz) < vmin


def _brute_bluesky_pair(state: TrackState, i: int, j: int, rpz: float, hpz: float, t: float
                        ) -> tuple[float, float, float, float, bool] | None:
    lat_i, lat_j = float(state.lat_deg[i]), float(state.lat_deg[j])
    dlat = math.radians(lat_j - lat_i)
    dlon = math.radians(((float(state.lon_deg[j]) - float(state.lon_deg[i])) + 180) % 360 - 180)
    cavelat = math.cos(math.radians(lat_j + lat_i) * 0.5)
    dist = BLUESKY_EARTH_RADIUS_M * math.sqrt(dlat * dlat + dlon * dlon * cavelat * cavelat) / NM_M * NM_M
    qdr = math.radians(math.degrees(math.atan2(dlon * cavelat, dlat)) % 360.0)
    dx, dy = dist * math.sin(qdr), dist * math.cos(qdr)
    ti, tj = math.radians(float(state.track_deg[i])), math.radians(float(state.track_deg[j]))
    gi, gj = float(state.gs_mps[i]), float(state.gs_mps[j])
    du = gj * math.sin(tj) - gi * math.sin(ti)
    dv = gj * math.cos(tj) - gi * math.cos(ti)
    dv2 = du * du + dv * dv
    if abs(dv2) < 1e-6:
        dv2 = 1e-6
    tcpa = -(du * dx + dv * dy) / dv2
    dcpa2 = abs(dist * dist - tcpa * tcpa * dv2)
    if not dcpa2 < rpz * rpz:
        return None
    half = math.sqrt(max(0.0, rpz * rpz - dcpa2)) / math.sqrt(dv2)
    dalt = float(state.alt_m[j] - state.alt_m[i])
    dvs_raw = float(state.vs_mps[j] - state.vs_mps[i])
    if abs(dvs_raw) < 1e-6:
        if not abs(dalt) < hpz:
            return None
        hi_, lo_ = -math.inf, math.inf
    else:
        hi_, lo_ = (dalt + hpz) / -dvs_raw, (dalt - hpz) / -dvs_raw
    tin = max(min(hi_, lo_), tcpa - half)
    tout = min(max(hi_, lo_), tcpa + half)
    if not (tin <= tout and tout > 0.0 and tin < t):
        return None
    tc = min(max(tcpa, 0.0), t)
    return (max(tin, 0.0), tc, math.hypot(dx + du * tc, dy + dv * tc), abs(dalt + dvs_raw * tc),
            dist < rpz and abs(dalt) < hpz)
