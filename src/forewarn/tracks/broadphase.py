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
def _overlap(lo: FloatArray, hi: FloatArray, s: int, a: int, b: int) -> bool:  # pragma: no cover - numba
    for d in range(lo.shape[2]):  # noqa: SIM110 - a plain loop is what numba compiles best
        if lo[s, a, d] > hi[s, b, d] or lo[s, b, d] > hi[s, a, d]:
            return False
    return True


@numba.njit(cache=True, nogil=True)
def _grid_pairs(
    lo: FloatArray, hi: FloatArray, grid_dims: int, origin: FloatArray, cell: FloatArray, group: IntArray,
    base: IntArray, dense_cells: int,
) -> tuple[IntArray, IntArray]:  # pragma: no cover - compiled by numba (tested through candidate_pairs)
    # A cell's key: (slice, c_0, ..., c_{g-1}) in mixed radix `base` (the cells per axis when dense, else 2^bits).
    n_slices, n, _ = lo.shape
    n_boxes = n_slices * n
    clo = np.empty((n_boxes, grid_dims), dtype=np.int64)
    chi = np.empty((n_boxes, grid_dims), dtype=np.int64)
    total = np.int64(0)
    for s in range(n_slices):
        for k in range(n):
            count = np.int64(1)
            for d in range(grid_dims):
                c_a = np.int64(np.floor((lo[s, k, d] - origin[d]) / cell[d]))
                c_b = np.int64(np.floor((hi[s, k, d] - origin[d]) / cell[d]))
                clo[s * n + k, d] = c_a
                chi[s * n + k, d] = c_b
                count *= c_b - c_a + 1
            total += count
    keys = np.empty(total, dtype=np.int64)
    owner = np.empty(total, dtype=np.int32)
    e = 0
    cur = np.empty(grid_dims, dtype=np.int64)
    for box in range(n_boxes):
        for d in range(grid_dims):
            cur[d] = clo[box, d]
        while True:
            key = np.int64(box // n)
            for d in range(grid_dims):
                key = key * base[d] + cur[d]
            keys[e] = key
            owner[e] = np.int32(box)
            e += 1
            # odometer over the box's cells
            d = grid_dims - 1
            while d >= 0:
                cur[d] += 1
                if cur[d] <= chi[box, d]:
                    break
                cur[d] = clo[box, d]
                d -= 1
            if d < 0:
                break
    # counting sort of the entries by cell: by the key itself when dense (no collisions, cache-friendly), else by
    # a multiplicative hash of the key (cells sharing a bucket are told apart by their keys below)
    bits = 1
    while (np.int64(1) << bits) < total:
        bits += 1
    n_buckets = dense_cells if dense_cells > 0 else np.int64(1) << bits
    golden = np.uint64(0x9E3779B97F4A7C15)
    shift = np.uint64(64 - bits)
    first = np.zeros(n_buckets + 1, dtype=np.int64)
    for e in range(total):
        slot = keys[e] if dense_cells > 0 else np.int64((np.uint64(keys[e]) * golden) >> shift)
        first[slot + 1] += 1
    for h in range(n_buckets):
        first[h + 1] += first[h]
    fill = first[:-1].copy()
    order = np.empty(total, dtype=np.int32)
    for e in range(total):
        slot = keys[e] if dense_cells > 0 else np.int64((np.uint64(keys[e]) * golden) >> shift)
        order[fill[slot]] = np.int32(e)
        fill[slot] += 1
    cap = max(16, 4 * n)
    out_i = np.empty(cap, dtype=np.int64)
    out_j = np.empty(cap, dtype=np.int64)
    m = 0
    for h in range(n_buckets):
        start = first[h]
        stop = first[h + 1]
        if stop - start < 2:
            continue
        for p in range(start, stop):
            key = keys[order[p]]
            box_a = owner[order[p]]
            s = box_a // n
            a = box_a - s * n
            for q in range(p + 1, stop):
                if keys[order[q]] != key:
                    continue
                b = owner[order[q]] - s * n
                if group[a] == group[b] or not _overlap(lo, hi, s, a, b):
                    continue
                # report the pair only in the cell holding the low corner of the intersection ...
                corner_key = np.int64(s)
                for d in range(grid_dims):
                    corner = max(lo[s, a, d], lo[s, b, d])
                    corner_key = corner_key * base[d] + np.int64(np.floor((corner - origin[d]) / cell[d]))
                if corner_key != key:
                    continue
                # ... and only in the first time slice where the two boxes overlap
                first_slice = True
                for earlier in range(s):
                    if _overlap(lo, hi, earlier, a, b):
                        first_slice = False
                        break
                if not first_slice:
                    continue
                if m == cap:
                    cap *= 2
                    grown_i = np.empty(cap, dtype=np.int64)
                    grown_j = np.empty(cap, dtype=np.int64)
                    grown_i[:m] = out_i[:m]
                    grown_j[:m] = out_j[:m]
                    out_i = grown_i
                    out_j = grown_j
                out_i[m] = min(a, b)
                out_j[m] = max(a, b)
                m += 1
    return out_i[:m].copy(), out_j[:m].copy()


@numba.njit(cache=True, nogil=True)
def _bounds(lo: FloatArray, hi: FloatArray, grid_dims: int) -> tuple[FloatArray, FloatArray, FloatArray, bool]:
    """Lowest corner, highest corner and mean extent of the boxes on the gridded axes; whether all are valid."""
    origin = np.full(grid_dims, np.inf)
    top = np.full(grid_dims, -np.inf)
    total = np.zeros(grid_dims)
    valid = True
    n_slices, n, dims = lo.shape
    for s in range(n_slices):
        for k in range(n):
            for d in range(dims):
                a = lo[s, k, d]
                b = hi[s, k, d]
                if not (np.isfinite(a) and np.isfinite(b) and a <= b):
                    valid = False
                if d < grid_dims:
                    origin[d] = min(origin[d], a)
                    top[d] = max(top[d], b)
                    total[d] += b - a
    return origin, top, total / max(1, n_slices * n), valid


@numba.njit(cache=True, nogil=True)
def _entries(lo: FloatArray, hi: FloatArray, grid_dims: int, origin: FloatArray, cell: FloatArray) -> float:
    """Grid entries the boxes would make (cells they touch, summed)."""
    total = 0.0
    n_slices, n, _ = lo.shape
    for s in range(n_slices):
        for k in range(n):
            count = 1.0
            for d in range(grid_dims):
                count *= np.floor((hi[s, k, d] - origin[d]) / cell[d]) - np.floor((lo[s, k, d] - origin[d]) / cell[d]) \
                    + 1.0
            total += count
    return total


@numba.njit(cache=True, nogil=True)
def _grid_order(lo: FloatArray, hi: FloatArray, grid_dims: int, origin: FloatArray, cell: FloatArray, base: IntArray
                ) -> tuple[IntArray, FloatArray, FloatArray]:
    """Tracks numbered by the cell of their first box (neighbours close in memory), and the boxes so renumbered."""
    n_slices, n, dims = lo.shape
    key = np.empty(n, dtype=np.int64)
    for k in range(n):
        c = np.int64(0)
        for d in range(grid_dims):
            c = c * base[d] + np.int64(np.floor((lo[0, k, d] - origin[d]) / cell[d]))
        key[k] = c
    perm = np.argsort(key)
    lo2 = np.empty_like(lo)
    hi2 = np.empty_like(hi)
    for s in range(n_slices):
        for k in range(n):
            for d in range(dims):
                lo2[s, k, d] = lo[s, perm[k], d]
                hi2[s, k, d] = hi[s, perm[k], d]
    return perm, lo2, hi2


def candidate_pairs(
    lo: FloatArray, hi: FloatArray, group: IntArray, *, grid_dims: int,
) -> tuple[IntArray, IntArray]:
    """Pairs ``(i, j)``, ``i < j``, of tracks of different groups whose closed boxes overlap on every axis.

    ``lo``/``hi``: float arrays of shape (N, D), the boxes' low and high corners (``lo <= hi``), any units as long
    as each axis is consistent; the first ``grid_dims`` (1 to 4) axes are gridded. Or of shape (S, N, D): S boxes
    per track, one per time slice; a pair is then reported when its two boxes of the *same* slice overlap.
    ``group``: int per track (same group: never paired). Returns two int64 arrays, each pair once, in no
    particular order. O(N S + entries + pairs) memory.
    """
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    if lo.ndim == 2:
        lo = lo[None]
        hi = hi[None]
    lo = np.ascontiguousarray(lo)
    hi = np.ascontiguousarray(hi)
    group = np.ascontiguousarray(group, dtype=np.int64)
    n_slices, n, dims = lo.shape
    if not 1 <= grid_dims <= 4 or grid_dims > dims:
        raise ValueError(f"grid_dims must be 1..4 and at most the number of axes, got {grid_dims}")
    if hi.shape != lo.shape or len(group) != n or not 1 <= n_slices <= 64 or n * n_slices * 64 >= 2**31:
        raise ValueError("lo, hi and group disagree in shape (or more than 64 slices, or too many boxes)")
    if n < 2:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty.copy()
    origin, top, mean_extent, valid = _bounds(lo, hi, grid_dims)
    if not valid:
        raise ValueError("boxes must be finite with lo <= hi")
    span = top - origin
    # cells about the mean size of the boxes (the cost of the pair tests is least when cells and boxes are alike);
    # never so small that an axis needs more cells than its share of the key holds (6 bits stay for the slice)
    key_bits = (_KEY_BITS_TOTAL - 6) // grid_dims
    cell = np.maximum(CELL_PER_MEAN_BOX * mean_extent, span / (2.0**key_bits - 4.0))
    cell = np.where(cell > 0.0, cell, 1.0)
    while (entries := _entries(lo, hi, grid_dims, origin, cell)) > MAX_ENTRIES_PER_BOX * n * n_slices:
        cell = cell * 2.0
    # cells per axis; keys are dense cell indices when the whole grid has few cells compared with the entries
    extent_cells = (np.floor(span / cell) + 1).astype(np.int64)
    n_cells = float(np.prod(extent_cells.astype(np.float64))) * n_slices
    dense = int(n_cells) if n_cells <= max(entries, 65536.0) else 0
    base = extent_cells if dense else np.full(grid_dims, 2**key_bits, dtype=np.int64)
    perm, lo_p, hi_p = _grid_order(lo, hi, grid_dims, origin, cell, base)
    i, j = _grid_pairs(lo_p, hi_p, grid_dims, origin, cell, group[perm], base, dense)
    a, b = perm[i], perm[j]
    return np.minimum(a, b), np.maximum(a, b)
