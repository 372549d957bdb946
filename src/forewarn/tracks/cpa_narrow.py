"""Tactical prediction, narrow phase: the numba kernels that solve the closest approach of each candidate pair,
geodesic (local tangent plane at the pair's midpoint) and BlueSky's flat-earth model (see
:mod:`forewarn.tracks.cpa`). Metres, seconds, WGS84 degrees.
"""

from __future__ import annotations

import numba
import numpy as np

from forewarn.tracks.cpa_vectors import (
    BLUESKY_EARTH_RADIUS_M,
    MIN_REL_SPEED2,
    MIN_REL_VS,
    NM_M,
    BoolArray,
    FloatArray,
    IntArray,
)

# ---------------------------------------------------------------------------------------------------- narrow phase


# Kernels over candidate pairs (numba, one pass, no temporaries): each writes the conflicting pairs' rows to the
# front of the output arrays and returns how many. Columns of `out`: t_los, t_cpa, h_cpa, v_cpa, hmin, vmin.


@numba.njit(cache=True, nogil=True)
def narrow_geodesic(
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
        if abs(dvz) > MIN_REL_VS:
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
        if a > MIN_REL_SPEED2:
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
def narrow_bluesky(
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


