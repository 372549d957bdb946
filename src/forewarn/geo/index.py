"""The spatio-temporal index: a uniform lon/lat grid whose cells are sorted by start time.

Design (what a query costs and why):

* Every entry is a 4D box: lon/lat bounding box (degrees, WGS84), altitude band [lower, upper) in metres,
  time window [start, end) in seconds since the Unix epoch (UTC).
* The *packed* part is a CSR layout: the entries of each grid cell are stored contiguously in a few slices by
  duration class, each sorted by start time, with its longest duration. A query visits only the cells its box
  touches and, in each slice, binary-searches the entries whose start lies in ``(q.start - longest, q.end)``:
  time partitioning without fixed buckets.
* Entries added since the last pack live in a small *delta* (cell -> list of slots), entries whose box
  spans many cells in a *big* list scanned linearly; removals clear an ``alive`` flag. When the delta
  outgrows an eighth of the packed part the index repacks (amortised O(1) per insert).
* Survivors of the cell/time lookup go through one vectorised NumPy filter on the exact 4D box. The caller
  then runs the exact geometric test (shapely) on what is left.

Box semantics match the conflict predicate: lon/lat boxes are closed (touching boxes are returned, the exact
geometric test decides), altitude and time intervals are half-open, so ``[a, b)`` and ``[b, c)`` do not
overlap.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

K = TypeVar("K", bound=Hashable)

_FIELDS = ("minx", "miny", "maxx", "maxy", "lower", "upper", "start", "end")
_CELL_STRIDE = 1 << 21

DURATION_CLASS_EDGES_S = [1800.0, 7200.0, 21600.0]
"""Entries of a cell are kept in separate time-sorted slices by duration (< 30 min, < 2 h, < 6 h, longer)."""


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


class VolumeIndex(Generic[K]):
    """Grid + time-sorted cells over 4D boxes, keyed by any hashable key (e.g. (operation, volume))."""

    def __init__(self, cell_deg: float | None = None, big_cell_count: int = 64) -> None:
        self._fixed_cell = cell_deg
        self.cell_deg = cell_deg or 0.25
        self.big_cell_count = big_cell_count
        self._cap = 0
        self._n = 0
        self._cols: dict[str, NDArray[np.float64]] = {f: np.empty(0) for f in _FIELDS}
        self._alive = np.zeros(0, dtype=bool)
        self._keys: list[K | None] = []
        self._slot_of: dict[K, int] = {}
        self._packed_n = 0
        self._cell_range: dict[int, list[tuple[int, int, float]]] = {}
        self._cell_slots = np.empty(0, dtype=np.int64)
        self._cell_starts = np.empty(0)
        self._delta: dict[int, list[int]] = {}
        self._delta_count = 0
        self._big: list[int] = []
        self._big_arr: NDArray[np.int64] | None = None

    # ------------------------------------------------------------------ building
    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, key: object) -> bool:
        return key in self._slot_of

    def _grow(self, need: int) -> None:
        if need <= self._cap:
            return
        cap = max(1024, need, self._cap * 2)
        for f in _FIELDS:
            col = np.empty(cap)
            col[: self._n] = self._cols[f][: self._n]
            self._cols[f] = col
        alive = np.zeros(cap, dtype=bool)
        alive[: self._n] = self._alive[: self._n]
        self._alive = alive
        self._cap = cap

    def _cells(self, minx: float, miny: float, maxx: float, maxy: float) -> tuple[int, int, int, int]:
        c = self.cell_deg
        return (
            math.floor((minx + 180.0) / c),
            math.floor((miny + 90.0) / c),
            math.floor((maxx + 180.0) / c),
            math.floor((maxy + 90.0) / c),
        )

    def _add(self, key: K, box: Box4D) -> int:
        """Store ``key``'s box in a new slot (replacing an old entry of the same key) and return the slot."""
        if key in self._slot_of:
            self.remove(key)
        self._grow(self._n + 1)
        slot = self._n
        self._n += 1
        for f in _FIELDS:
            self._cols[f][slot] = getattr(box, f)
        self._alive[slot] = True
        self._keys.append(key)
        self._slot_of[key] = slot
        return slot

    def insert(self, key: K, box: Box4D) -> None:
        """Add (or replace) the entry ``key`` with its 4D box."""
        self._place(self._add(key, box), box)
        if self._delta_count > max(4096, self._packed_n // 8):
            self.pack()

    def _place(self, slot: int, box: Box4D) -> None:
        ix0, iy0, ix1, iy1 = self._cells(box.minx, box.miny, box.maxx, box.maxy)
        if (ix1 - ix0 + 1) * (iy1 - iy0 + 1) > self.big_cell_count:
            self._big.append(slot)
            self._big_arr = None
            return
        for ix in range(ix0, ix1 + 1):
            for iy in range(iy0, iy1 + 1):
                self._delta.setdefault(ix * _CELL_STRIDE + iy, []).append(slot)
        self._delta_count += 1

    def insert_many(self, items: Iterable[tuple[K, Box4D]]) -> None:
        """Add many entries, then pack once."""
        for key, box in items:
            self._add(key, box)
        self.pack()

    def remove(self, key: K) -> None:
        """Remove the entry ``key``; unknown keys are ignored."""
        slot = self._slot_of.pop(key, None)
        if slot is not None:
            self._alive[slot] = False
            self._keys[slot] = None

    def pack(self) -> None:
        """Compact dead slots and rebuild the CSR cells from every live entry."""
        live = np.flatnonzero(self._alive[: self._n])
        cols = {f: self._cols[f][live].copy() for f in _FIELDS}
        keys = [self._keys[i] for i in live.tolist()]
        n = len(live)
        self._cap = 0
        self._n = 0
        self._cols = {f: np.empty(0) for f in _FIELDS}
        self._alive = np.zeros(0, dtype=bool)
        self._grow(n)
        for f in _FIELDS:
            self._cols[f][:n] = cols[f]
        self._alive[:n] = True
        self._n = n
        self._keys = keys
        self._slot_of = {k: i for i, k in enumerate(keys) if k is not None}
        if self._fixed_cell is None and n:
            extent = np.maximum(cols["maxx"] - cols["minx"], cols["maxy"] - cols["miny"])
            self.cell_deg = float(np.clip(2.0 * np.median(extent), 0.02, 5.0))
        c = self.cell_deg
        ix0 = np.floor((cols["minx"] + 180.0) / c).astype(np.int64)
        iy0 = np.floor((cols["miny"] + 90.0) / c).astype(np.int64)
        ix1 = np.floor((cols["maxx"] + 180.0) / c).astype(np.int64)
        iy1 = np.floor((cols["maxy"] + 90.0) / c).astype(np.int64)
        nx, ny = ix1 - ix0 + 1, iy1 - iy0 + 1
        count = nx * ny
        big = count > self.big_cell_count
        self._big = np.flatnonzero(big).tolist()
        self._big_arr = None
        small = np.flatnonzero(~big)
        reps = count[small]
        slots = np.repeat(small, reps)
        # offset of each repeated row within its entry's cell block, then its (dx, dy)
        first = np.repeat(np.cumsum(reps) - reps, reps)
        offset = np.arange(len(slots)) - first
        dx = offset // ny[slots]
        dy = offset % ny[slots]
        cell = (ix0[slots] + dx) * _CELL_STRIDE + (iy0[slots] + dy)
        starts = cols["start"][slots]
        durations = cols["end"][slots] - starts
        # duration classes: a short entry's slice need not reach back as far as the longest one of its cell
        dclass = np.searchsorted(DURATION_CLASS_EDGES_S, durations)
        group = cell * (len(DURATION_CLASS_EDGES_S) + 1) + dclass
        order = np.lexsort((starts, group))
        cell, group, slots, starts, durations = cell[order], group[order], slots[order], starts[order], durations[order]
        self._cell_slots = slots.astype(np.int64)
        self._cell_starts = starts
        self._cell_range = {}
        if len(cell):
            bounds = np.flatnonzero(np.diff(group)) + 1
            lo = np.concatenate([[0], bounds])
            hi = np.concatenate([bounds, [len(group)]])
            longest = np.maximum.reduceat(durations, lo)
            for k, a, b, d in zip(cell[lo].tolist(), lo.tolist(), hi.tolist(), longest.tolist(), strict=True):
                self._cell_range.setdefault(int(k), []).append((int(a), int(b), float(d)))
        self._packed_n = n
        self._delta = {}
        self._delta_count = 0

    # ------------------------------------------------------------------ querying
    def query(self, box: Box4D) -> list[K]:
        """Keys of the live entries whose 4D box meets ``box`` (see module docstring for semantics)."""
        slots = self.query_slots(box)
        keys = self._keys
        return [k for k in (keys[i] for i in slots.tolist()) if k is not None]

    def query_slots(self, box: Box4D) -> NDArray[np.int64]:
        """Slots (internal positions) of the matching live entries, sorted."""
        ix0, iy0, ix1, iy1 = self._cells(box.minx, box.miny, box.maxx, box.maxy)
        ncells = (ix1 - ix0 + 1) * (iy1 - iy0 + 1)
        if ncells > max(256, len(self._cell_range) // 2):
            candidates = np.arange(self._n, dtype=np.int64)
        else:
            parts: list[NDArray[np.int64]] = []
            ranges, starts, cslots, delta = self._cell_range, self._cell_starts, self._cell_slots, self._delta
            for ix in range(ix0, ix1 + 1):
                base = ix * _CELL_STRIDE
                for iy in range(iy0, iy1 + 1):
                    ck = base + iy
                    for lo, hi, longest in ranges.get(ck, ()):
                        seg = starts[lo:hi]
                        a = lo + int(np.searchsorted(seg, box.start - longest, "right"))
                        b = lo + int(np.searchsorted(seg, box.end, "left"))
                        if b > a:
                            parts.append(cslots[a:b])
                    extra = delta.get(ck)
                    if extra:
                        parts.append(np.asarray(extra, dtype=np.int64))
            if self._big:
                if self._big_arr is None:
                    self._big_arr = np.asarray(self._big, dtype=np.int64)
                parts.append(self._big_arr)
            if not parts:
                return np.empty(0, dtype=np.int64)
            candidates = np.concatenate(parts) if len(parts) > 1 else parts[0]
        return self._filter(candidates, box)

    def _filter(self, cand: NDArray[np.int64], box: Box4D) -> NDArray[np.int64]:
        c = self._cols
        mask = (
            self._alive[cand]
            & (c["minx"][cand] <= box.maxx)
            & (c["maxx"][cand] >= box.minx)
            & (c["miny"][cand] <= box.maxy)
            & (c["maxy"][cand] >= box.miny)
            & (c["lower"][cand] < box.upper)
            & (c["upper"][cand] > box.lower)
            & (c["start"][cand] < box.end)
            & (c["end"][cand] > box.start)
        )
        return np.unique(cand[mask])

    def brute_force(self, box: Box4D) -> list[K]:
        """The same answer as :meth:`query` by scanning every entry (for tests and benchmarks)."""
        slots = self._filter(np.arange(self._n, dtype=np.int64), box)
        return [k for k in (self._keys[i] for i in slots.tolist()) if k is not None]

    def memory_bytes(self) -> int:
        """Approximate bytes held by the NumPy arrays of the index (not the keys)."""
        total = sum(a.nbytes for a in self._cols.values()) + self._alive.nbytes
        return total + self._cell_slots.nbytes + self._cell_starts.nbytes
