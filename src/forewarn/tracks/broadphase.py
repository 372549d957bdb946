"""Broad phase of tactical conflict prediction: pairs of axis-aligned boxes that overlap, through a uniform grid.

Each track is given a box (``lo``, ``hi``: one row per track, one column per axis) that contains everything it can
reach within the look-ahead, padded by half the separation minima (see :mod:`forewarn.tracks.cpa` for the frames
and units: ECEF metres, or longitude radians / metres north / metres altitude). Two tracks can only be in conflict
when their boxes overlap on every axis, so only those pairs go to the exact (narrow) test.

The first ``grid_dims`` axes are hashed into a uniform grid (cells of ``cell`` units per axis, keys sorted, no
dense grid array, so the cost does not depend on the size of the area); every box is entered in each cell it
touches; within a cell every pair of entries is tested on all axes, and a pair is reported only by the one cell that
contains the low corner of the two boxes' intersection, so no pair is reported twice. Memory is O(entries + pairs):
never N x N.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

MAX_ENTRIES_PER_BOX = 16.0
"""The grid is coarsened until the boxes occupy at most this many cells each on average."""

CELL_PER_MEAN_BOX = 1.5
"""Grid cell edge per axis, in units of the boxes' mean extent along that axis (measured best on dense traffic)."""

_KEY_BITS_TOTAL = 62  # the cell key packs every gridded axis into one int64


@numba.njit(cache=True, nogil=True)
def _grid_pairs(
    lo: FloatArray, hi: FloatArray, grid_dims: int, origin: FloatArray, cell: FloatArray, group: IntArray,
    key_bits: int,
) -> tuple[IntArray, IntArray]:  # pragma: no cover - compiled by numba (tested through candidate_pairs)
    n, dims = lo.shape
    clo = np.empty((n, grid_dims), dtype=np.int64)
    chi = np.empty((n, grid_dims), dtype=np.int64)
    total = np.int64(0)
    for k in range(n):
        count = np.int64(1)
        for d in range(grid_dims):
            c_a = np.int64(np.floor((lo[k, d] - origin[d]) / cell[d]))
            c_b = np.int64(np.floor((hi[k, d] - origin[d]) / cell[d]))
            clo[k, d] = c_a
            chi[k, d] = c_b
            count *= c_b - c_a + 1
        total += count
    stride = np.int64(1) << key_bits
    keys = np.empty(total, dtype=np.int64)
    owner = np.empty(total, dtype=np.int64)
    e = 0
    cur = np.empty(grid_dims, dtype=np.int64)
    for k in range(n):
        for d in range(grid_dims):
            cur[d] = clo[k, d]
        while True:
            key = np.int64(0)
            for d in range(grid_dims):
                key = key * stride + cur[d]
            keys[e] = key
            owner[e] = k
            e += 1
            # odometer over the box's cells
            d = grid_dims - 1
            while d >= 0:
                cur[d] += 1
                if cur[d] <= chi[k, d]:
                    break
                cur[d] = clo[k, d]
                d -= 1
            if d < 0:
                break
    # counting sort of the entries by a multiplicative hash of their cell key (O(entries), no comparison sort);
    # cells that share a bucket are told apart by their keys below
    bits = 1
    while (np.int64(1) << bits) < 2 * total:
        bits += 1
    n_buckets = np.int64(1) << bits
    bucket = np.empty(total, dtype=np.int64)
    first = np.zeros(n_buckets + 1, dtype=np.int64)
    golden = np.uint64(0x9E3779B97F4A7C15)
    shift = np.uint64(64 - bits)
    for e in range(total):
        slot = np.int64((np.uint64(keys[e]) * golden) >> shift)
        bucket[e] = slot
        first[slot + 1] += 1
    for h in range(n_buckets):
        first[h + 1] += first[h]
    fill = first[:-1].copy()
    order = np.empty(total, dtype=np.int64)
    for e in range(total):
        slot = bucket[e]
        order[fill[slot]] = e
        fill[slot] += 1
    cap = max(16, 4 * n)
    out_i = np.empty(cap, dtype=np.int64)
    out_j = np.empty(cap, dtype=np.int64)
    m = 0
    cell_here = np.empty(grid_dims, dtype=np.int64)
    for h in range(n_buckets):
        start = first[h]
        stop = first[h + 1]
        if stop - start < 2:
            continue
        for p in range(start, stop):
            key = keys[order[p]]
            a = owner[order[p]]
            rest = key
            for d in range(grid_dims - 1, -1, -1):
                cell_here[d] = rest % stride
                rest //= stride
            for q in range(p + 1, stop):
                if keys[order[q]] != key:
                    continue
                b2 = owner[order[q]]
                if group[a] == group[b2]:
                    continue
                overlap = True
                for d in range(dims):
                    if lo[a, d] > hi[b2, d] or lo[b2, d] > hi[a, d]:
                        overlap = False
                        break
                if not overlap:
                    continue
                # report the pair only in the cell holding the low corner of the intersection
                mine = True
                for d in range(grid_dims):
                    corner = max(lo[a, d], lo[b2, d])
                    c = np.int64(np.floor((corner - origin[d]) / cell[d]))
                    if c != cell_here[d]:
                        mine = False
                        break
                if not mine:
                    continue
                if m == cap:
                    cap *= 2
                    grown_i = np.empty(cap, dtype=np.int64)
                    grown_j = np.empty(cap, dtype=np.int64)
                    grown_i[:m] = out_i[:m]
                    grown_j[:m] = out_j[:m]
                    out_i = grown_i
                    out_j = grown_j
                out_i[m] = min(a, b2)
                out_j[m] = max(a, b2)
                m += 1
    return out_i[:m].copy(), out_j[:m].copy()


def candidate_pairs(
    lo: FloatArray, hi: FloatArray, group: IntArray, *, grid_dims: int,
) -> tuple[IntArray, IntArray]:
    """Pairs ``(i, j)``, ``i < j``, of tracks of different groups whose closed boxes overlap on every axis.

    ``lo``/``hi``: float arrays of shape (N, D), the boxes' low and high corners (``lo <= hi``), any units as long
    as each axis is consistent; the first ``grid_dims`` (1 to 4) axes are gridded. ``group``: int per track (same
    group: never paired). Returns two int64 arrays, each pair once, in no particular order.
    O(N + entries + pairs) memory.
    """
    lo = np.ascontiguousarray(lo, dtype=np.float64)
    hi = np.ascontiguousarray(hi, dtype=np.float64)
    group = np.ascontiguousarray(group, dtype=np.int64)
    n = lo.shape[0]
    if not 1 <= grid_dims <= 4 or grid_dims > lo.shape[1]:
        raise ValueError(f"grid_dims must be 1..4 and at most the number of axes, got {grid_dims}")
    if n < 2:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty.copy()
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(lo <= hi)):
        raise ValueError("boxes must be finite with lo <= hi")
    g_lo = lo[:, :grid_dims]
    g_hi = hi[:, :grid_dims]
    origin = g_lo.min(axis=0)
    span = g_hi.max(axis=0) - origin
    extent = g_hi - g_lo
    # cells about the mean size of the boxes (the cost of the pair tests is least when cells and boxes are alike);
    # never so small that an axis needs more cells than its share of the key holds
    key_bits = _KEY_BITS_TOTAL // grid_dims
    cell = np.maximum(CELL_PER_MEAN_BOX * extent.mean(axis=0), span / (2.0**key_bits - 4.0))
    cell = np.where(cell > 0.0, cell, 1.0)
    while True:
        per_box = np.prod(np.floor((g_hi - origin) / cell) - np.floor((g_lo - origin) / cell) + 1.0, axis=1)
        if float(per_box.sum()) <= MAX_ENTRIES_PER_BOX * n:
            break
        cell = cell * 2.0
    i, j = _grid_pairs(lo, hi, grid_dims, origin, cell, group, key_bits)
    return i, j
