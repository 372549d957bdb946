"""The spatio-temporal index: a uniform lon/lat grid whose cells are sorted by start time, held as packed arrays.

Design (what a query costs and why):

* Every entry is a 4D box: lon/lat bounding box (degrees, WGS84), altitude band [lower, upper) in metres,
  time window [start, end) in seconds since the Unix epoch (UTC); one row of ``boxes`` (n, 8). An entry may also
  carry a *tag* and an *owner* (integers the caller defines: for the airspace, a party/class code and an
  operation number) and its footprint as packed lon/lat rings (:mod:`forewarn.geo.packed`).
* The *packed* part is a CSR layout: the entries of each grid cell are stored contiguously in a few slices by
  duration class, each sorted by start time, with its longest duration. A query visits only the cells its box
  touches and, in each slice, binary-searches the entries whose start lies in ``(q.start - longest, q.end)``:
  time partitioning without fixed buckets. The walk is one compiled call (:func:`forewarn.geo.kernels.walk`).
* Entries added since the last pack, and entries whose box spans many cells, are in an *extra* list scanned
  linearly; removals clear an ``alive`` flag. When the unpacked entries outgrow a sixteenth of the packed part
  the index repacks (amortised O(1) per insert).

Box semantics match the conflict predicate: lon/lat boxes are closed (touching boxes are returned, the exact
geometric test decides), altitude and time intervals are half-open, so ``[a, b)`` and ``[b, c)`` do not
overlap. Not thread-safe: a query writes the duplicate stamps.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry

from forewarn.geo import kernels
from forewarn.geo.packed import PackedShapes, pack, unpack

K = TypeVar("K", bound=Hashable)
G = TypeVar("G", bound=np.generic)

_CELL_STRIDE = 1 << 21

DURATION_CLASS_EDGES_S = [1800.0, 7200.0, 21600.0]
"""Entries of a cell are kept in separate time-sorted slices by duration (< 30 min, < 2 h, < 6 h, longer)."""


StoredArrays = tuple[NDArray[np.float64], NDArray[np.bool_], int, NDArray[np.int64], int, NDArray[np.int64],
                     NDArray[np.int64], NDArray[np.float64], NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]
"""boxes (n, 8), alive, n, duplicate stamps, first stamp, tags, owners, lon, lat, ring starts, slot rings."""


@dataclass(frozen=True)
class Box4D:
    """A 4D search box: lon/lat degrees (closed), altitude metres and time epoch seconds (half-open)."""

    minx: float
    miny: float
    maxx: float
    maxy: float
    lower: float
    upper: float
    start: float
    end: float

    def row(self) -> tuple[float, float, float, float, float, float, float, float]:
        return (self.minx, self.miny, self.maxx, self.maxy, self.lower, self.upper, self.start, self.end)


class VolumeIndex(Generic[K]):
    """Grid + time-sorted cells over 4D boxes, keyed by any hashable key (e.g. (operation, volume))."""

    def __init__(self, cell_deg: float | None = None, big_cell_count: int = 64) -> None:
        self._fixed_cell = cell_deg
        self.cell_deg = cell_deg or 0.25
        self.big_cell_count = big_cell_count
        self._n = 0
        self._boxes = np.empty((0, 8))
        self._alive = np.zeros(0, dtype=bool)
        self._tags = np.zeros(0, dtype=np.int64)
        self._owners = np.zeros(0, dtype=np.int64)
        self._seen = np.zeros(0, dtype=np.int64)
        self._stamp = 0
        # footprints: slot s owns rings slot_rings[s] .. slot_rings[s+1]-1;
        # ring r owns the lon/lat xs, ys[ring_start[r]:ring_start[r+1]]
        self._xs = np.empty(0)
        self._ys = np.empty(0)
        self._nxy = 0
        self._ring_start = np.zeros(1, dtype=np.int64)
        self._new_part = np.zeros(0, dtype=bool)
        self._nring = 0
        self._slot_rings = np.zeros(1, dtype=np.int64)
        self._keys: list[K | None] = []
        self._slot_of: dict[K, int] = {}
        self._packed_n = 0
        self._grid: tuple[float, NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.float64],
                          NDArray[np.int64], NDArray[np.float64], NDArray[np.int64]] | None = None
        self._cell_keys = np.empty(0, dtype=np.int64)
        self._cell_g = np.zeros(1, dtype=np.int64)
        self._groups = np.empty((0, 2), dtype=np.int64)
        self._longest = np.empty(0)
        self._cell_slots = np.empty(0, dtype=np.int64)
        self._cell_starts = np.empty(0)
        self._extra: list[int] = []
        self._unpacked = 0

    # ------------------------------------------------------------------ building
    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, key: object) -> bool:
        return key in self._slot_of

    def _grow(self, slots: int, rings: int, coords: int) -> None:
        n = self._n
        self._boxes = _grown(self._boxes, n + slots, n)
        self._alive = _grown(self._alive, n + slots, n)
        self._tags = _grown(self._tags, n + slots, n)
        self._owners = _grown(self._owners, n + slots, n)
        self._seen = _grown(self._seen, n + slots, n)
        self._slot_rings = _grown(self._slot_rings, n + slots + 1, n + 1)
        self._ring_start = _grown(self._ring_start, self._nring + rings + 1, self._nring + 1)
        self._new_part = _grown(self._new_part, self._nring + rings, self._nring)
        self._xs = _grown(self._xs, self._nxy + coords, self._nxy)
        self._ys = _grown(self._ys, self._nxy + coords, self._nxy)

    def _append(self, keys: Sequence[K], boxes: NDArray[np.float64], tags: NDArray[np.int64] | None,
                owners: NDArray[np.int64] | None, shapes: PackedShapes | None) -> int:
        """Store entries in new slots (replacing old entries of the same keys); return the first new slot."""
        for key in keys:
            if key in self._slot_of:
                self.remove(key)
        m = len(keys)
        nring = 0 if shapes is None else len(shapes.ring_sizes)
        ncoord = 0 if shapes is None else len(shapes.xy)
        self._grow(m, nring, ncoord)
        first = self._n
        self._boxes[first:first + m] = boxes
        self._alive[first:first + m] = True
        self._tags[first:first + m] = 0 if tags is None else tags
        self._owners[first:first + m] = -1 if owners is None else owners
        r0 = self._nring
        per_slot = np.zeros(m, dtype=np.int64) if shapes is None else shapes.rings_per_shape
        self._slot_rings[first + 1:first + m + 1] = r0 + np.cumsum(per_slot)
        if shapes is not None:
            self._ring_start[r0 + 1:r0 + nring + 1] = self._nxy + np.cumsum(shapes.ring_sizes)
            self._new_part[r0:r0 + nring] = shapes.new_part
            self._xs[self._nxy:self._nxy + ncoord] = shapes.xy[:, 0]
            self._ys[self._nxy:self._nxy + ncoord] = shapes.xy[:, 1]
            self._nring += nring
            self._nxy += ncoord
        for i, key in enumerate(keys):
            self._keys.append(key)
            self._slot_of[key] = first + i
        self._n += m
        return first

    def insert(self, key: K, box: Box4D, *, tag: int = 0, owner: int = -1,
               shape: BaseGeometry | None = None) -> None:
        """Add (or replace) the entry ``key`` with its 4D box (and optionally its tag, owner and footprint)."""
        slot = self._append([key], np.asarray([box.row()]), np.asarray([tag]), np.asarray([owner]),
                            None if shape is None else pack([shape]))
        self._extra.append(slot)
        self._grid = None
        self._unpacked += 1
        if self._unpacked > max(2048, self._packed_n // 16):
            self.pack()

    def insert_many(self, items: Iterable[tuple[K, Box4D]]) -> None:
        """Add many entries, then pack once."""
        pairs = list(items)
        if pairs:
            self._append([k for k, _ in pairs], np.asarray([b.row() for _, b in pairs]), None, None, None)
        self.pack()

    def insert_arrays(self, keys: Sequence[K], boxes: NDArray[np.float64], tags: NDArray[np.int64],
                      owners: NDArray[np.int64], shapes: PackedShapes) -> None:
        """Add many entries given as arrays (boxes (m, 8) in :class:`Box4D` field order), then pack once."""
        self._append(keys, np.asarray(boxes, dtype=np.float64), tags, owners, shapes)
        self.pack()

    def remove(self, key: K) -> None:
        """Remove the entry ``key``; unknown keys are ignored."""
        slot = self._slot_of.pop(key, None)
        if slot is not None:
            self._alive[slot] = False
            self._keys[slot] = None

    def slot(self, key: K) -> int:
        return self._slot_of[key]

    def key(self, slot: int) -> K:
        found = self._keys[slot]
        if found is None:
            raise KeyError(slot)
        return found

    def shape(self, slot: int) -> BaseGeometry:
        """The footprint stored with slot ``slot``, rebuilt from its packed rings (same coordinates)."""
        r0, r1 = int(self._slot_rings[slot]), int(self._slot_rings[slot + 1])
        if r0 == r1:
            raise KeyError(f"slot {slot} has no footprint")
        c0, c1 = int(self._ring_start[r0]), int(self._ring_start[r1])
        xy = np.column_stack([self._xs[c0:c1], self._ys[c0:c1]])
        return unpack(xy, np.diff(self._ring_start[r0:r1 + 1]), self._new_part[r0:r1])

    def tag_of(self, slot: int) -> int:
        return int(self._tags[slot])

    def pack(self) -> None:
        """Compact dead slots and rebuild the CSR cells from every live entry."""
        live = np.flatnonzero(self._alive[: self._n])
        self._compact(live)
        n = self._n
        boxes = self._boxes[:n]
        if self._fixed_cell is None and n:
            extent = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
            self.cell_deg = float(np.clip(2.0 * np.median(extent), 0.02, 5.0))
        c = self.cell_deg
        ix0 = np.floor((boxes[:, 0] + 180.0) / c).astype(np.int64)
        iy0 = np.floor((boxes[:, 1] + 90.0) / c).astype(np.int64)
        ix1 = np.floor((boxes[:, 2] + 180.0) / c).astype(np.int64)
        iy1 = np.floor((boxes[:, 3] + 90.0) / c).astype(np.int64)
        nx, ny = ix1 - ix0 + 1, iy1 - iy0 + 1
        count = nx * ny
        big = count > self.big_cell_count
        self._extra = np.flatnonzero(big).tolist()
        small = np.flatnonzero(~big)
        reps = count[small]
        slots = np.repeat(small, reps)
        # offset of each repeated row within its entry's cell block, then its (dx, dy)
        offset = np.arange(len(slots)) - np.repeat(np.cumsum(reps) - reps, reps)
        cell = (ix0[slots] + offset // ny[slots]) * _CELL_STRIDE + (iy0[slots] + offset % ny[slots])
        starts = boxes[slots, 6]
        durations = boxes[slots, 7] - starts
        # duration classes: a short entry's slice need not reach back as far as the longest one of its cell
        group = cell * (len(DURATION_CLASS_EDGES_S) + 1) + np.searchsorted(DURATION_CLASS_EDGES_S, durations)
        order = np.lexsort((starts, group))
        cell, group, starts, durations = cell[order], group[order], starts[order], durations[order]
        self._cell_slots = slots[order].astype(np.int64)
        self._cell_starts = np.ascontiguousarray(starts)
        bounds = np.flatnonzero(np.diff(group)) + 1
        lo = np.concatenate([[0], bounds]).astype(np.int64) if len(cell) else np.empty(0, dtype=np.int64)
        hi = np.concatenate([bounds, [len(group)]]).astype(np.int64) if len(cell) else lo
        self._groups = np.ascontiguousarray(np.column_stack([lo, hi]))
        self._longest = np.maximum.reduceat(durations, lo) if len(cell) else np.empty(0)
        group_cell = cell[lo]
        self._cell_keys, first = np.unique(group_cell, return_index=True)
        self._cell_g = np.append(first, len(group_cell)).astype(np.int64)
        self._packed_n = n
        self._unpacked = 0
        self._grid = None

    def _compact(self, live: NDArray[np.int64]) -> None:
        n = len(live)
        r0, r1 = self._slot_rings[live], self._slot_rings[live + 1]
        rings = _ranges(r0, r1 - r0)
        c0, c1 = self._ring_start[rings], self._ring_start[rings + 1]
        coords = _ranges(c0, c1 - c0)
        self._boxes = np.ascontiguousarray(self._boxes[live])
        self._alive = np.ones(n, dtype=bool)
        self._tags = self._tags[live].copy()
        self._owners = self._owners[live].copy()
        self._seen = np.zeros(n, dtype=np.int64)
        self._stamp = 0
        self._slot_rings = np.concatenate([[0], np.cumsum(r1 - r0)]).astype(np.int64)
        self._ring_start = np.concatenate([[0], np.cumsum(c1 - c0)]).astype(np.int64)
        self._new_part = self._new_part[rings].copy()
        self._xs = self._xs[coords]
        self._ys = self._ys[coords]
        self._nring, self._nxy = len(rings), len(coords)
        keys = [self._keys[i] for i in live.tolist()]
        self._keys = keys
        self._slot_of = {k: i for i, k in enumerate(keys) if k is not None}
        self._n = n

    # ------------------------------------------------------------------ querying
    def grid(self) -> tuple[float, NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.float64],
                            NDArray[np.int64], NDArray[np.float64], NDArray[np.int64]]:
        """The grid as the arrays :func:`forewarn.geo.kernels.walk` takes (cached until the next change)."""
        if self._grid is None:
            self._grid = (self.cell_deg, self._cell_keys, self._cell_g, self._groups, self._longest,
                          self._cell_slots, self._cell_starts, np.asarray(self._extra, dtype=np.int64))
        return self._grid

    def next_stamps(self, count: int) -> int:
        """Reserve ``count`` duplicate-removal stamps for a compiled query; return the first."""
        self._stamp += count
        return self._stamp - count + 1

    def query(self, box: Box4D) -> list[K]:
        """Keys of the live entries whose 4D box meets ``box`` (see module docstring for semantics)."""
        keys = self._keys
        return [k for k in (keys[i] for i in self.query_slots(box).tolist()) if k is not None]

    def query_slots(self, box: Box4D) -> NDArray[np.int64]:
        """Slots (internal positions) of the matching live entries, sorted."""
        q = np.asarray(box.row(), dtype=np.float64)
        found = kernels.walk(q, *self.grid(), self._boxes, self._alive, self._n, self._seen, self.next_stamps(1))
        return np.sort(found)

    def stored(self, stamps: int) -> StoredArrays:
        """The stored entries as :func:`forewarn.geo.kernels.detect_pairs` takes them after the grid, with
        ``stamps`` duplicate-removal stamps reserved (valid until the next change)."""
        return (self._boxes, self._alive, self._n, self._seen, self.next_stamps(stamps), self._tags, self._owners,
                self._xs, self._ys, self._ring_start, self._slot_rings)

    def box(self, slot: int) -> tuple[float, ...]:
        """The 4D box of slot ``slot`` (:class:`Box4D` field order)."""
        return tuple(self._boxes[slot].tolist())

    def tags_of(self, slots: NDArray[np.int64]) -> NDArray[np.int64]:
        """The tags (caller-defined integers) of the entries in ``slots``."""
        return self._tags[slots]

    def owners_of(self, slots: NDArray[np.int64]) -> NDArray[np.int64]:
        """The owners (caller-defined integers) of the entries in ``slots``."""
        return self._owners[slots]

    def live_arrays(self) -> tuple[NDArray[np.float64], list[K | None]]:
        """The boxes (n, 8) of every slot and the slot keys (``None`` where removed), for oracles in tests."""
        return self._boxes[: self._n], self._keys[: self._n]

    def memory_bytes(self) -> int:
        """Approximate bytes held by the NumPy arrays of the index (not the keys)."""
        arrays = (self._boxes, self._alive, self._tags, self._owners, self._seen, self._slot_rings,
                  self._ring_start, self._new_part, self._xs, self._ys, self._cell_slots, self._cell_starts,
                  self._groups, self._longest, self._cell_keys, self._cell_g)
        return sum(a.nbytes for a in arrays)


def _grown(a: NDArray[G], need: int, used: int) -> NDArray[G]:
    """``a`` with room for ``need`` rows (doubling), its first ``used`` rows kept."""
    if need <= len(a):
        return a
    out = np.zeros((max(1024, need, 2 * len(a)), *a.shape[1:]), dtype=a.dtype)
    out[:used] = a[:used]
    return out


def _ranges(starts: NDArray[np.int64], counts: NDArray[np.int64]) -> NDArray[np.int64]:
    """Concatenation of ``arange(s, s + c)`` for each start s and count c."""
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return np.repeat(starts.astype(np.int64), counts) + offsets
