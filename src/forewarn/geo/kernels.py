"""Compiled (numba) kernels of the 4D index: the grid walk and the per-pair horizontal screen.

Coordinates are WGS84 lon/lat degrees; the horizontal screen works in a *local metric frame* per query volume:
the equirectangular map ``x = (lon - lon0) * kx(lat0)``, ``y = (lat - lat0) * ky(lat0)`` (metres, WGS84 metres
per degree at the query volume's centre latitude ``lat0``). The map is affine in lon/lat, so the footprints'
edges (straight in lon/lat) stay straight and every polygon test on the frame is a test on the lon/lat polygon.

Its metric error is bounded, per pair, by the spread of ``kx(lat)/kx(lat0)`` and ``ky(lat)/ky(lat0)`` over the
latitudes the pair spans (the first fundamental form of the ellipsoid in geodetic coordinates is exactly
``kx(lat)^2 dlon^2 + ky(lat)^2 dlat^2``), plus ``FRAME_SLACK`` for geodesics leaving that span. The screen
answers HIT, MISS or UNSURE with that error and the chord sag of the polygonal footprints and buffers
(``tolerance_m``) on the safe side; UNSURE pairs go to the exact shapely test, so detection answers exactly as
the exhaustive exact test (``tests/oracles_strategic.py``). The final comparisons are all in :func:`horizontal_verdict`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from numpy.typing import NDArray

from forewarn.geo.geodesy import CHORD_TOLERANCE_M

MISS, HIT, UNSURE = 0, 1, 2
"""Verdicts of the horizontal screen."""

TOUCH_EPS_M = 1e-3
"""Boundaries closer than this (frame metres) may touch: with a zero minimum the exact test decides."""

FRAME_SLACK = 2e-3
"""Relative allowance, on top of the latitude spread of the frame scale, for geodesics that bulge poleward
out of the pair's latitude span (metres per metre; about 0.2 m at 100 m, 200 m at 100 km)."""

FRAME_LAT_LIMIT_DEG = 80.0
"""Beyond this latitude the frame is not trusted: every pair that is not a clear overlap is UNSURE."""

_E2 = 6.69437999014e-3
_A = 6_378_137.0
_DEG = math.pi / 180.0
_CELL_STRIDE = 1 << 21


@njit(cache=True)
def tolerance_m(size_m: float, h: float) -> float:
    """Allowance (m) for the polygonal approximations: the query footprint (circle arcs and corridor sides,
    sag <= max(10 m, 0.1 % of its size)) and its geodesic buffer by ``h`` (sag <= max(10 m, 0.1 % of size + h)),
    doubled, plus 2 m for the local projections geodesy buffers in (< 1 m each)."""
    return 2.0 * (2.0 * CHORD_TOLERANCE_M + 1e-3 * (2.0 * size_m + h)) + 2.0


@njit(cache=True)
def metres_per_degree(lat: float) -> tuple[float, float]:
    """(kx, ky): WGS84 metres per degree of longitude and of latitude at latitude ``lat`` (degrees)."""
    s = math.sin(lat * _DEG)
    w = math.sqrt(1.0 - _E2 * s * s)
    return _DEG * _A / w * math.cos(lat * _DEG), _DEG * _A * (1.0 - _E2) / (w * w * w)


@njit(cache=True)
def frame_error(lat0: float, lat_lo: float, lat_hi: float) -> float:
    """Relative error bound of the frame centred at ``lat0`` for points between ``lat_lo`` and ``lat_hi``."""
    if max(abs(lat_lo), abs(lat_hi)) > FRAME_LAT_LIMIT_DEG:
        return 1.0
    kx0, ky0 = metres_per_degree(lat0)
    worst = 0.0
    for lat in (lat_lo, lat_hi, 0.0):
        if lat == 0.0 and not (lat_lo < 0.0 < lat_hi):
            continue
        kx, ky = metres_per_degree(lat)
        worst = max(worst, abs(kx / kx0 - 1.0), abs(ky / ky0 - 1.0))
    return worst + FRAME_SLACK


@njit(cache=True)
def horizontal_verdict(d_frame: float, overlap: bool, h: float, rel: float, tol: float) -> int:
    """The one place where the horizontal minimum is compared (see the module docstring).

    ``d_frame``: smallest distance (frame metres) between the two footprints' boundaries; ``overlap``: the
    footprints robustly share interior (a proper edge crossing, or one inside the other with boundaries apart);
    ``h``: the horizontal minimum (m); ``rel``: frame error bound; ``tol``: polygon allowance (m).
    Exact rule being approximated: h > 0: B meets A's footprint buffered by h; h = 0: interiors overlap.
    """
    if overlap:
        return HIT
    if h <= 0.0:
        return MISS if d_frame > TOUCH_EPS_M else UNSURE
    if d_frame * (1.0 + rel) < h - tol:
        return HIT
    if d_frame * (1.0 - rel) > h + tol:
        return MISS
    return UNSURE


# ------------------------------------------------------------------------------------------- planar helpers
@njit(cache=True)
def _seg_dist2(px: float, py: float, ax: float, ay: float, bx: float, by: float) -> float:
    dx, dy = bx - ax, by - ay
    ll = dx * dx + dy * dy
    t = 0.0 if ll == 0.0 else max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / ll))
    ex, ey = ax + t * dx - px, ay + t * dy - py
    return ex * ex + ey * ey


@njit(cache=True)
def _orient(ax: float, ay: float, bx: float, by: float, cx: float, cy: float) -> float:
    return (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)


@njit(cache=True)
def _cross_properly(ax: float, ay: float, bx: float, by: float,
                    cx: float, cy: float, dx: float, dy: float) -> bool:
    """Segments ab and cd cross at a point inside both, with every endpoint clearly off the other's line."""
    lab = math.hypot(bx - ax, by - ay)
    lcd = math.hypot(dx - cx, dy - cy)
    eps = 1e-9 * lab * lcd + 1e-12
    o1, o2 = _orient(ax, ay, bx, by, cx, cy), _orient(ax, ay, bx, by, dx, dy)
    o3, o4 = _orient(cx, cy, dx, dy, ax, ay), _orient(cx, cy, dx, dy, bx, by)
    return ((o1 > eps and o2 < -eps) or (o1 < -eps and o2 > eps)) and \
        ((o3 > eps and o4 < -eps) or (o3 < -eps and o4 > eps))


@njit(cache=True)
def inside(px: float, py: float, xs: NDArray[np.float64], ys: NDArray[np.float64],
           ring_start: NDArray[np.int64], r0: int, r1: int) -> bool:
    """Even-odd point-in-polygon over rings ``r0 .. r1-1`` (closed rings: last vertex = first)."""
    c = False
    for r in range(r0, r1):
        for k in range(ring_start[r], ring_start[r + 1] - 1):
            ay, by = ys[k], ys[k + 1]
            if (ay > py) != (by > py):
                x = xs[k] + (py - ay) * (xs[k + 1] - xs[k]) / (by - ay)
                if px < x:
                    c = not c
    return c


@njit(cache=True)
def boundary_distance(ax: NDArray[np.float64], ay: NDArray[np.float64], a_rings: NDArray[np.int64],
                      xs: NDArray[np.float64], ys: NDArray[np.float64], ring_start: NDArray[np.int64],
                      r0: int, r1: int, frame: NDArray[np.float64], cut: float, stop: float) -> tuple[float, bool]:
    """(smallest distance between the boundaries of A and B, whether two of their edges cross properly).

    A is given in frame metres (``ax, ay``, ring offsets ``a_rings``), B in lon/lat (rings ``r0 .. r1-1`` of the
    packed ``xs, ys, ring_start``), mapped on the fly through ``frame`` = (lon0, lat0, kx0, ky0). Edge pairs
    whose boxes are farther apart than ``cut`` are skipped (a returned distance above ``cut`` only means
    "more than ``cut``"): first A's edges are kept only if they come within ``cut`` of B's bounding box, then
    each B edge within ``cut`` of those edges' box is tested against them. The scan stops as soon as the
    distance falls below ``stop``.
    """
    lon0, lat0, kx0, ky0 = frame[0], frame[1], frame[2], frame[3]
    j0, j1 = ring_start[r0], ring_start[r1]
    bx0, bx1 = (xs[j0:j1].min() - lon0) * kx0, (xs[j0:j1].max() - lon0) * kx0
    by0, by1 = (ys[j0:j1].min() - lat0) * ky0, (ys[j0:j1].max() - lat0) * ky0
    near = np.empty(len(ax), dtype=np.int64)  # A's edges (by first vertex) within cut of B's box
    m = 0
    nx0, nx1, ny0, ny1 = math.inf, -math.inf, math.inf, -math.inf
    for ra in range(len(a_rings) - 1):
        for i in range(a_rings[ra], a_rings[ra + 1] - 1):
            u1, v1, u2, v2 = ax[i], ay[i], ax[i + 1], ay[i + 1]
            if max(u1, u2) < bx0 - cut or min(u1, u2) > bx1 + cut or max(v1, v2) < by0 - cut \
                    or min(v1, v2) > by1 + cut:
                continue
            near[m] = i
            m += 1
            nx0, nx1 = min(nx0, u1, u2), max(nx1, u1, u2)
            ny0, ny1 = min(ny0, v1, v2), max(ny1, v1, v2)
    best2 = math.inf
    if m == 0:
        return best2, False
    for rb in range(r0, r1):
        for j in range(ring_start[rb], ring_start[rb + 1] - 1):
            x1, y1 = (xs[j] - lon0) * kx0, (ys[j] - lat0) * ky0
            x2, y2 = (xs[j + 1] - lon0) * kx0, (ys[j + 1] - lat0) * ky0
            lox, hix = min(x1, x2) - cut, max(x1, x2) + cut
            loy, hiy = min(y1, y2) - cut, max(y1, y2) + cut
            if nx1 < lox or nx0 > hix or ny1 < loy or ny0 > hiy:
                continue
            for k in range(m):
                i = near[k]
                u1, v1, u2, v2 = ax[i], ay[i], ax[i + 1], ay[i + 1]
                if max(u1, u2) < lox or min(u1, u2) > hix or max(v1, v2) < loy or min(v1, v2) > hiy:
                    continue
                if _cross_properly(u1, v1, u2, v2, x1, y1, x2, y2):
                    return 0.0, True
                d2 = min(_seg_dist2(x1, y1, u1, v1, u2, v2), _seg_dist2(x2, y2, u1, v1, u2, v2),
                         _seg_dist2(u1, v1, x1, y1, x2, y2), _seg_dist2(u2, v2, x1, y1, x2, y2))
                if d2 < best2:
                    best2 = d2
                    if math.sqrt(best2) < stop:
                        return math.sqrt(best2), False
    return math.sqrt(best2), False


@njit(cache=True)
def _point_boundary_dist2(px: float, py: float, ax: NDArray[np.float64], ay: NDArray[np.float64],
                          a_rings: NDArray[np.int64]) -> float:
    """Squared distance (frame m^2) from point (px, py) to the boundary of A (frame metres)."""
    best2 = math.inf
    for ra in range(len(a_rings) - 1):
        for i in range(a_rings[ra], a_rings[ra + 1] - 1):
            best2 = min(best2, _seg_dist2(px, py, ax[i], ay[i], ax[i + 1], ay[i + 1]))
    return best2


@njit(cache=True)
def inner_radius(ax: NDArray[np.float64], ay: NDArray[np.float64], a_rings: NDArray[np.int64]) -> float:
    """Radius (frame m) of a disc about the frame origin that lies inside A: the origin's distance to A's
    boundary when the origin is inside A, else 0."""
    if not inside(0.0, 0.0, ax, ay, a_rings, 0, len(a_rings) - 1):
        return 0.0
    return math.sqrt(_point_boundary_dist2(0.0, 0.0, ax, ay, a_rings))


@njit(cache=True)
def screen_pair(ax: NDArray[np.float64], ay: NDArray[np.float64], a_rings: NDArray[np.int64],
                a_lon: float, a_lat: float, xs: NDArray[np.float64], ys: NDArray[np.float64],
                ring_start: NDArray[np.int64], r0: int, r1: int, frame: NDArray[np.float64],
                h: float, rel: float, tol: float, a_box: NDArray[np.float64], b_box: NDArray[np.float64]) -> int:
    """HIT, MISS or UNSURE for query footprint A (frame metres; ``a_lon, a_lat`` one of its vertices in lon/lat;
    ``a_box`` its frame bounding box (minx, miny, maxx, maxy) and the radius of a disc about the frame origin
    inside A, 0 if none (:func:`inner_radius`)) against stored footprint B (rings ``r0 .. r1-1``;
    ``b_box`` its lon/lat bounding box) under the horizontal minimum ``h`` metres.

    Two shortcuts before the full boundary scan, each a bound on the true distance: the gap between the two
    bounding boxes (a lower bound: MISS when even it is beyond ``h`` with the error allowances) and, for
    ``h > 0``, the distance from B's vertex nearest A's frame origin to that inner disc, then to A itself (upper
    bounds: HIT when one is within ``h`` with the allowances, or when that vertex lies inside A)."""
    lon0, lat0, kx0, ky0 = frame[0], frame[1], frame[2], frame[3]
    if rel < 1.0:
        gx = max(0.0, (b_box[0] - lon0) * kx0 - a_box[2], a_box[0] - (b_box[2] - lon0) * kx0)
        gy = max(0.0, (b_box[1] - lat0) * ky0 - a_box[3], a_box[1] - (b_box[3] - lat0) * ky0)
        if math.hypot(gx, gy) * (1.0 - rel) > h + tol + TOUCH_EPS_M:
            return MISS
        if h > 0.0:
            best2, px, py = math.inf, 0.0, 0.0
            for j in range(ring_start[r0], ring_start[r1]):
                x, y = (xs[j] - lon0) * kx0, (ys[j] - lat0) * ky0
                if x * x + y * y < best2:
                    best2, px, py = x * x + y * y, x, y
            if max(0.0, math.sqrt(best2) - a_box[4]) * (1.0 + rel) < h - tol:
                return HIT  # that vertex is within h of the disc inside A
            inside_a = inside(px, py, ax, ay, a_rings, 0, len(a_rings) - 1)
            d = 0.0 if inside_a else math.sqrt(_point_boundary_dist2(px, py, ax, ay, a_rings))
            if d * (1.0 + rel) < h - tol:
                return HIT
    j = ring_start[r0]
    b_in_a = inside((xs[j] - lon0) * kx0, (ys[j] - lat0) * ky0, ax, ay, a_rings, 0, len(a_rings) - 1)
    contained = b_in_a or inside(a_lon, a_lat, xs, ys, ring_start, r0, r1)
    if contained and h > 0.0:
        return horizontal_verdict(0.0, False, h, rel, tol)
    if rel >= 1.0:
        cut, stop = math.inf, -1.0
    else:
        cut = max((h + tol) / (1.0 - rel), 0.0) + 2.0 * TOUCH_EPS_M
        stop = (h - tol) / (1.0 + rel) if h > 0.0 else -1.0
    d, crossing = boundary_distance(ax, ay, a_rings, xs, ys, ring_start, r0, r1, frame, cut, stop)
    return horizontal_verdict(d, crossing or (contained and d > TOUCH_EPS_M), h, rel, tol)


# ------------------------------------------------------------------------------------------- the grid walk
@njit(cache=True)
def _push(buf: NDArray[np.int64], n: int, value: int) -> NDArray[np.int64]:
    if n == len(buf):
        bigger = np.empty(2 * len(buf), dtype=np.int64)
        bigger[:n] = buf[:n]
        buf = bigger
    buf[n] = value
    return buf


@njit(cache=True)
def _meets(boxes: NDArray[np.float64], s: int, q: NDArray[np.float64]) -> bool:
    """Stored box ``s`` meets query box ``q``: lon/lat closed, altitude and time half-open."""
    return bool(boxes[s, 0] <= q[2] and boxes[s, 2] >= q[0] and boxes[s, 1] <= q[3] and boxes[s, 3] >= q[1]
            and boxes[s, 4] < q[5] and boxes[s, 5] > q[4] and boxes[s, 6] < q[7] and boxes[s, 7] > q[6])


@njit(cache=True)
def walk(q: NDArray[np.float64], cell_deg: float, cell_keys: NDArray[np.int64], cell_g: NDArray[np.int64],
         groups: NDArray[np.int64], longest: NDArray[np.float64], cell_slots: NDArray[np.int64],
         cell_starts: NDArray[np.float64], extra: NDArray[np.int64], boxes: NDArray[np.float64],
         alive: NDArray[np.bool_], n: int, seen: NDArray[np.int64], stamp: int) -> NDArray[np.int64]:
    """Live slots whose box meets ``q`` (each once, unsorted).

    Grid: cell ``cell_keys[c]`` owns the slices ``cell_g[c] .. cell_g[c+1]-1``; slice ``g`` holds
    ``cell_slots[groups[g, 0]:groups[g, 1]]`` sorted by start, none longer than ``longest[g]`` seconds.
    ``extra`` (unpacked and big entries) is scanned linearly; ``seen`` (one stamp per slot) removes duplicates.
    """
    out = np.empty(64, dtype=np.int64)
    k = 0
    ix0 = math.floor((q[0] + 180.0) / cell_deg)
    iy0 = math.floor((q[1] + 90.0) / cell_deg)
    ix1 = math.floor((q[2] + 180.0) / cell_deg)
    iy1 = math.floor((q[3] + 90.0) / cell_deg)
    if (ix1 - ix0 + 1) * (iy1 - iy0 + 1) > max(256, len(cell_keys) // 2):
        for s in range(n):
            if alive[s] and _meets(boxes, s, q):
                out = _push(out, k, s)
                k += 1
        return out[:k]
    for ix in range(ix0, ix1 + 1):
        for iy in range(iy0, iy1 + 1):
            key = ix * _CELL_STRIDE + iy
            c = np.searchsorted(cell_keys, key)
            if c == len(cell_keys) or cell_keys[c] != key:
                continue
            for g in range(cell_g[c], cell_g[c + 1]):
                lo, hi = groups[g, 0], groups[g, 1]
                a = lo + np.searchsorted(cell_starts[lo:hi], q[6] - longest[g], side="right")
                b = lo + np.searchsorted(cell_starts[lo:hi], q[7], side="left")
                for p in range(a, b):
                    s = cell_slots[p]
                    if seen[s] != stamp and alive[s] and _meets(boxes, s, q):
                        seen[s] = stamp
                        out = _push(out, k, s)
                        k += 1
    for s in extra:
        if seen[s] != stamp and alive[s] and _meets(boxes, s, q):
            seen[s] = stamp
            out = _push(out, k, s)
            k += 1
    return out[:k]


# ------------------------------------------------------------------------------------------- detection
@njit(cache=True)
def _frame_of(qx: NDArray[np.float64], qy: NDArray[np.float64]) -> NDArray[np.float64]:
    lon0 = 0.5 * (qx.min() + qx.max())
    lat0 = 0.5 * (qy.min() + qy.max())
    kx0, ky0 = metres_per_degree(lat0)
    return np.array([lon0, lat0, kx0, ky0])


@njit(cache=True)
def detect_pairs(
    grid: tuple[float, NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.float64],
                NDArray[np.int64], NDArray[np.float64], NDArray[np.int64]],
    boxes: NDArray[np.float64], alive: NDArray[np.bool_], n: int, seen: NDArray[np.int64], stamp: int,
    tags: NDArray[np.int64], owners: NDArray[np.int64], xs: NDArray[np.float64], ys: NDArray[np.float64],
    ring_start: NDArray[np.int64], slot_rings: NDArray[np.int64],
    qboxes: NDArray[np.float64], qvals: NDArray[np.float64], qx: NDArray[np.float64], qy: NDArray[np.float64],
    q_ring_start: NDArray[np.int64], q_vol_rings: NDArray[np.int64], qsize: NDArray[np.float64],
    q_owner: int, tag_minima: NDArray[np.float64],
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Every (query volume, stored slot) pair that may conflict: (query volume index, slot, HIT or UNSURE).

    ``qboxes[i]`` is volume i's search box, ``qvals[i]`` its exact (start_s, end_s, lower_m, upper_m);
    ``tag_minima[tag]`` = (horizontal m, vertical m, time s) for the query operation's party and class against
    a stored volume of that tag, horizontal < 0 when they do not conflict at all (same party, no agreement).
    ``qsize[i]`` bounds volume i's footprint radius or half-width (m). Stored volumes of operation
    ``q_owner`` (the query operation itself) are skipped.
    """
    out_q = np.empty(64, dtype=np.int64)
    out_s = np.empty(64, dtype=np.int64)
    out_v = np.empty(64, dtype=np.int64)
    k = 0
    cell_deg, cell_keys, cell_g, groups, longest, cell_slots, cell_starts, extra = grid
    for i in range(len(qboxes)):
        cand = walk(qboxes[i], cell_deg, cell_keys, cell_g, groups, longest, cell_slots, cell_starts, extra,
                    boxes, alive, n, seen, stamp + i)
        c0, c1 = q_ring_start[q_vol_rings[i]], q_ring_start[q_vol_rings[i + 1]]
        frame = _frame_of(qx[c0:c1], qy[c0:c1])
        ax = (qx[c0:c1] - frame[0]) * frame[2]
        ay = (qy[c0:c1] - frame[1]) * frame[3]
        a_rings = q_ring_start[q_vol_rings[i]:q_vol_rings[i + 1] + 1] - c0
        a_lo, a_hi = qy[c0:c1].min(), qy[c0:c1].max()
        a_box = np.array([ax.min(), ay.min(), ax.max(), ay.max(), inner_radius(ax, ay, a_rings)])
        a_start, a_end, a_lower, a_upper = qvals[i, 0], qvals[i, 1], qvals[i, 2], qvals[i, 3]
        for s in cand:
            if owners[s] == q_owner:
                continue
            h, v, t = tag_minima[tags[s], 0], tag_minima[tags[s], 1], tag_minima[tags[s], 2]
            if h < 0.0:
                continue
            if not (boxes[s, 6] < a_end + t and boxes[s, 7] > a_start - t
                    and boxes[s, 4] < a_upper + v and boxes[s, 5] > a_lower - v):
                continue
            rel = frame_error(frame[1], min(a_lo, boxes[s, 1]) - 0.05, max(a_hi, boxes[s, 3]) + 0.05)
            verdict = screen_pair(ax, ay, a_rings, qx[c0], qy[c0], xs, ys, ring_start,
                                  slot_rings[s], slot_rings[s + 1], frame, h, rel, tolerance_m(qsize[i], h),
                                  a_box, boxes[s, :4])
            if verdict != MISS:
                out_q = _push(out_q, k, i)
                out_s = _push(out_s, k, s)
                out_v = _push(out_v, k, verdict)
                k += 1
    return out_q[:k], out_s[:k], out_v[:k]


def warm() -> None:
    """Compile (or load from the on-disk cache) every kernel now, on a tiny input, so no query pays for it."""
    boxes = np.array([[0.0, 0.0, 1.0, 1.0, 0.0, 10.0, 0.0, 10.0]])
    ring = np.array([0.0, 1.0, 1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0, 1.0, 0.0])
    one = np.array([0, 5], dtype=np.int64)
    grid = (1.0, np.array([180 * _CELL_STRIDE + 90], dtype=np.int64), np.array([0, 1], dtype=np.int64),
            np.array([[0, 1]], dtype=np.int64), np.array([10.0]), np.array([0], dtype=np.int64), np.array([0.0]),
            np.empty(0, dtype=np.int64))
    detect_pairs(grid, boxes, np.array([True]), 1, np.zeros(1, dtype=np.int64), 1, np.zeros(1, dtype=np.int64),
                 np.zeros(1, dtype=np.int64), ring[0], ring[1], one, np.array([0, 1], dtype=np.int64),
                 boxes, np.array([[0.0, 10.0, 0.0, 10.0]]), ring[0] + 0.5, ring[1], one,
                 np.array([0, 1], dtype=np.int64), np.array([1000.0]), -1, np.array([[100.0, 0.0, 0.0]]))
    walk(boxes[0], *grid, boxes, np.array([True]), 1, np.zeros(1, dtype=np.int64), 2)
