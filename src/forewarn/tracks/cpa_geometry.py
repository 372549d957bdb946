"""Tactical prediction, preparation: the minima table of the groups, each track's surface point, frame and
velocity in Earth-centred Earth-fixed coordinates (pyproj, WGS84), and the broad-phase boxes (see
:mod:`forewarn.tracks.cpa` for the method). Metres, seconds, WGS84 degrees.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyproj

from forewarn.tracks.broadphase import candidate_pairs
from forewarn.tracks.cpa_vectors import (
    BLUESKY_EARTH_RADIUS_M,
    MAX_SLICES,
    PAD_M,
    SLICE_PER_MINIMUM,
    FloatArray,
    IntArray,
    Minima,
    MinimaSpec,
    Model,
    TrackVectors,
)

# ---------------------------------------------------------------------------------------------------- minima


@dataclass(frozen=True)
class MinimaTable:
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


def minima_table(minima: MinimaSpec, groups: IntArray, default: Minima) -> tuple[MinimaTable, IntArray]:
    """The minima table over the distinct groups, and each track's group code (index into the table)."""
    values, codes = np.unique(groups, return_inverse=True)
    codes = codes.astype(np.int64)
    if isinstance(minima, Minima):
        return MinimaTable(minima.horizontal_m, minima.vertical_m, minima.horizontal_m, minima.vertical_m), codes
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
    return MinimaTable(h, v, h_max, v_max), codes


# ---------------------------------------------------------------------------------------------------- geometry


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


def tangent_frame(up: FloatArray) -> FloatArray:
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


def ground_velocity(state: TrackVectors, frames: FloatArray) -> FloatArray:
    trk = np.radians(state.track_deg)
    ve = state.gs_mps * np.sin(trk)
    vn = state.gs_mps * np.cos(trk)
    out: FloatArray = ve[:, None] * frames[0] + vn[:, None] * frames[1]
    return out


@dataclass(frozen=True)
class Prepared:
    """Per-track quantities of one model, computed once per pass (O(N))."""

    model: Model
    p: FloatArray  # geodesic: ECEF surface position (N, 3); bluesky: unused
    up: FloatArray
    vel: FloatArray  # geodesic: ECEF ground velocity (N, 3); bluesky: (east, north) m/s (N, 2)
    box_lo: FloatArray  # (slices, N, axes)
    box_hi: FloatArray
    grid_dims: int


def _slices(state: TrackVectors, table: MinimaTable, lookahead_s: float) -> FloatArray:
    """Time slice edges (s) for the broad phase: about one slice per minimum's width flown, 1 to MAX_SLICES."""
    vmax = float(np.max(state.gs_mps)) if len(state) else 0.0
    k = math.ceil(vmax * lookahead_s / (SLICE_PER_MINIMUM * max(table.h_max, 1.0)))
    return np.linspace(0.0, lookahead_s, min(MAX_SLICES, max(1, k)) + 1)


def _swept(start: FloatArray, rate: FloatArray, edges: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Per slice (rows) and track (columns): the range of ``start + rate * t`` for t within the slice."""
    a = start[None, :] + rate[None, :] * edges[:-1, None]
    b = start[None, :] + rate[None, :] * edges[1:, None]
    return np.minimum(a, b), np.maximum(a, b)


def prepare(state: TrackVectors, table: MinimaTable, lookahead_s: float, model: Model) -> Prepared:
    """Per-track quantities and broad-phase boxes of shape (slices, N, axes)."""
    t = lookahead_s
    edges = _slices(state, table, t)
    h_pad = 0.5 * table.h_max + PAD_M
    v_pad = 0.5 * table.v_max + PAD_M
    z_lo, z_hi = _swept(state.alt_m, state.vs_mps, edges)
    z_lo -= v_pad
    z_hi += v_pad
    vmax = float(np.max(state.gs_mps)) if len(state) else 0.0
    if model == "geodesic":
        p, up, frames = surface_ecef(state.lat_deg, state.lon_deg)
        vel = ground_velocity(state, frames)
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
        rot = tangent_frame(up)
        q = p @ rot.T
        w = vel @ rot.T
        axes = [_swept(q[:, k], w[:, k], edges) for k in range(3)]
        lo = np.stack([axes[0][0] - pad, axes[1][0] - pad, z_lo, axes[2][0] - pad], axis=2)
        hi = np.stack([axes[0][1] + pad, axes[1][1] + pad, z_hi, axes[2][1] + pad], axis=2)
        return Prepared(model, p, up, vel, lo, hi, 3)
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
    x_pad = (table.h_max / 2.0 + PAD_M) / (re * c_lo)
    x_lo = np.minimum(lo_a, lo_b) - x_pad
    x_hi = np.maximum(hi_a, hi_b) + x_pad
    # near a pole the longitude reach is unbounded: cover every longitude
    x_lo = np.where(polar, -np.pi, x_lo)
    x_hi = np.where(polar, np.pi, x_hi)
    lo = np.stack([x_lo, y_lo - h_pad, z_lo], axis=2)
    hi = np.stack([x_hi, y_hi + h_pad, z_hi], axis=2)
    return Prepared(model, np.empty((0, 3)), np.empty((0, 3)), np.stack([u, v], axis=1), lo, hi, 3)


def bluesky_candidates(prep: Prepared, codes: IntArray) -> tuple[IntArray, IntArray]:
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


