"""Brute-force oracles: the slow, obvious twins of the vectorised tactical functions, used only by the tests.

:func:`predict_conflicts_brute` answers :func:`forewarn.tracks.cpa.predict_conflicts` pair by pair in scalar maths;
:func:`containing_brute_force` answers :meth:`forewarn.tracks.conformance.VolumeLayer.containing` point by volume.
Units as in :mod:`forewarn.tracks.cpa` (WGS84 degrees, metres, m/s, seconds).
"""

from __future__ import annotations

import math

import numpy as np
import shapely

from forewarn.tracks.conformance import VolumeLayer
from forewarn.tracks.cpa import check_inputs, resolve_minima
from forewarn.tracks.cpa_geometry import ground_velocity, surface_ecef
from forewarn.tracks.cpa_vectors import (
    BLUESKY_EARTH_RADIUS_M,
    DEFAULT_MINIMA,
    MIN_REL_SPEED2,
    MIN_REL_VS,
    NM_M,
    FloatArray,
    Minima,
    MinimaSpec,
    Model,
    PredictedConflicts,
    TrackVectors,
)
from forewarn.units import DISTANCE_TOLERANCE_M


def predict_conflicts_brute(
    state: TrackVectors,
    minima: MinimaSpec = DEFAULT_MINIMA,
    *,
    lookahead_s: float = 300.0,
    model: Model = "geodesic",
    default_minima: Minima = DEFAULT_MINIMA,
) -> PredictedConflicts:
    """The same answer as :func:`predict_conflicts` by the obvious route: every pair, one at a time, scalar maths.

    O(N^2) time: for tests and small N only.
    """
    check_inputs(state, lookahead_s, model)
    table, codes = resolve_minima(state, minima, default_minima, model)
    n = len(state)
    rows: list[tuple[int, int, float, float, float, float, bool, float, float]] = []
    if model == "geodesic":
        p, up, frames = surface_ecef(state.lat_deg, state.lon_deg)
        vel = ground_velocity(state, frames)
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


def _brute_geodesic_pair(state: TrackVectors, p: FloatArray, up: FloatArray, vel: FloatArray, i: int, j: int,
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
    if a > MIN_REL_SPEED2:
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
    if abs(dvz) > MIN_REL_VS:
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


def _brute_bluesky_pair(state: TrackVectors, i: int, j: int, rpz: float, hpz: float, t: float
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


def containing_brute_force(layer: VolumeLayer, lon: FloatArray, lat: FloatArray, alt_m: FloatArray,
                           t_s: FloatArray) -> set[tuple[int, int]]:
    """The slow obvious twin of :meth:`VolumeLayer.containing` (for tests): every position against every volume."""
    tol = layer.tolerance
    out: set[tuple[int, int]] = set()
    for p in range(len(lon)):
        point = shapely.Point(float(lon[p]), float(lat[p]))
        for v, shape in enumerate(layer.shapes):
            if not shape.intersects(point):
                continue
            a = float(alt_m[p])
            low, high = tol.band(layer.lower_m[v:v + 1], layer.upper_m[v:v + 1])
            band = math.isnan(a) or ((low[0] < a if tol.separation else low[0] <= a) and a < high[0])
            window = layer.start_s[v] - tol.time_s <= float(t_s[p]) < layer.end_s[v] + tol.time_s
            if band and window:
                out.add((p, v))
    return out
