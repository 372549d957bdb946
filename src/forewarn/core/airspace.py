"""The live picture: the latest version of every live operation, indexed in 4D, and the agreements.

No I/O: the service fills it from the store at start and keeps it in step with every committed write.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry

from forewarn.core.live import LiveEntry, LiveOperations, OperationLoader
from forewarn.core.model import ZERO_MINIMA, Agreement, Operation, SeparationMinima
from forewarn.geo import geodesy, kernels
from forewarn.geo.index import Box4D, VolumeIndex
from forewarn.geo.packed import pack
from forewarn.geo.volume import Volume4D
from forewarn.units import TIME_TOLERANCE_S, effective_minimum

VolumeKey = tuple[str, int]
"""(operation id, volume index) of a stored volume."""

Bound = tuple[SeparationMinima, Agreement]
"""The strictest minima binding two parties' classes, and the deciding agreement."""


class Extent(NamedTuple):
    """A volume's window (epoch seconds UTC, half-open) and altitude band (metres, half-open)."""

    start_s: float
    end_s: float
    lower_m: float
    upper_m: float


class AgreementBook:
    """Answers which agreements bind two parties and with what minima."""

    def __init__(self, agreements: Iterable[Agreement] = ()) -> None:
        self._agreements: dict[str, Agreement] = {}
        self._largest: dict[str, SeparationMinima] = {}
        self.revision = 0
        """Incremented by every change of the agreements (caches of derived views compare it)."""
        self._recompute()  # caches exist even for a book with no agreements
        for agreement in agreements:
            self.put(agreement)

    def put(self, agreement: Agreement) -> None:
        """Add or replace an agreement."""
        self._agreements[agreement.id] = agreement
        self.revision += 1
        self._recompute()

    def _recompute(self) -> None:
        largest: dict[str, SeparationMinima] = {}
        for agreement in self._agreements.values():
            for party in agreement.parties:
                current = largest.get(party, ZERO_MINIMA)
                largest[party] = current.merged(agreement.largest_minima())
        self._largest = largest
        self._minima_cache: dict[tuple[str, str, str, str], tuple[SeparationMinima, Agreement] | None] = {}
        self._bound_cache: dict[str, frozenset[str]] = {}
        self._binding_cache: dict[tuple[str, str], list[Agreement]] = {}

    def __iter__(self) -> Iterator[Agreement]:
        return iter(sorted(self._agreements.values(), key=lambda a: a.id))

    def get(self, agreement_id: str) -> Agreement | None:
        return self._agreements.get(agreement_id)

    def binding(self, a: str, b: str) -> list[Agreement]:
        """Agreements binding parties ``a`` and ``b``, sorted by id (cached until an agreement changes)."""
        hit = self._binding_cache.get((a, b))
        if hit is None:
            hit = [ag for ag in self if ag.binds(a, b)]
            self._binding_cache[(a, b)] = hit
        return list(hit)

    def bound_parties(self, party: str) -> set[str]:
        """Every party bound to ``party`` by at least one agreement."""
        return set(self.bound_to(party))

    def bound_to(self, party: str) -> frozenset[str]:
        """:meth:`bound_parties`, cached until an agreement changes (do not modify)."""
        hit = self._bound_cache.get(party)
        if hit is None:
            hit = frozenset(p for ag in self._agreements.values() if party in ag.parties for p in ag.parties)
            hit = self._bound_cache[party] = hit - {party}
        return hit

    def minima(self, a: str, b: str, class_a: str, class_b: str) -> tuple[SeparationMinima, Agreement] | None:
        """Cached :meth:`compute_minima`."""
        key = (a, b, class_a, class_b)
        if key not in self._minima_cache:
            self._minima_cache[key] = self.compute_minima(a, b, class_a, class_b)
        return self._minima_cache[key]

    def compute_minima(
        self, a: str, b: str, class_a: str, class_b: str
    ) -> tuple[SeparationMinima, Agreement] | None:
        """Strictest minima of all agreements binding ``a`` and ``b`` for these classes, and the deciding
        agreement, whose priority rule applies: the one demanding the most separation (horizontal, then
        vertical, then time), ties to the lowest id. ``None`` when no agreement binds them."""
        agreements = self.binding(a, b)
        if not agreements:
            return None
        each = [(ag, ag.minima_for(class_a, class_b)) for ag in agreements]
        minima = each[0][1]
        for _, m in each[1:]:
            minima = minima.merged(m)
        # sorted() is stable and ``agreements`` is in id order, so ties go to the lowest id
        deciding = sorted(each, key=lambda e: (-e[1].horizontal_m, -e[1].vertical_m, -e[1].time_s))[0][0]
        return minima, deciding

    def largest_for(self, party: str) -> SeparationMinima:
        """The largest minima any agreement of ``party`` can require (for index prefilters)."""
        return self._largest.get(party, ZERO_MINIMA)


PREFILTER_PAD_DEG = 1e-3
"""Padding (degrees, about 100 m) added to search boxes, so that the chord sag of a polygonal buffer can never
make the prefilter drop a pair that the exact test, with a smaller buffer, would accept."""


def volume_box(shape: BaseGeometry, volume: Volume4D) -> Box4D:
    """The 4D box of a stored volume: its footprint's bounds, altitude band and window."""
    return _box(shape.bounds, volume, 0.0, 0.0, 0.0)


def search_box(volume: Volume4D, minima: SeparationMinima, widen_s: float = 0.0, widen_m: float = 0.0) -> Box4D:
    """The 4D box that contains everything within ``minima`` of ``volume`` (and ``widen_*`` more in time and
    altitude): the prefilter of detection. The horizontal part is computed from the footprint's bounds when
    that is provably conservative, else from the real geodesic buffer; padded by ``PREFILTER_PAD_DEG``."""
    bounds = geodesy.expanded_bounds(volume.shape.bounds, minima.horizontal_m)
    if bounds is None:
        bounds = volume.buffered(minima.horizontal_m).bounds
    return _box(bounds, volume, minima.vertical_m + widen_m, minima.time_s + widen_s, PREFILTER_PAD_DEG)


def _box(
    bounds: tuple[float, float, float, float], volume: Volume4D, vertical_m: float, time_s: float, pad_deg: float
) -> Box4D:
    minx, miny, maxx, maxy = bounds
    return Box4D(
        minx - pad_deg, miny - pad_deg, maxx + pad_deg, maxy + pad_deg,
        volume.lower_m - vertical_m, volume.upper_m + vertical_m,
        volume.start_s - time_s, volume.end_s + time_s,
    )


QueryArrays = tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64],
                    NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]

def query_arrays(operation: Operation, largest: SeparationMinima) -> QueryArrays:
    """What the compiled screen needs of the query operation: per volume its search box (as
    :func:`search_box`), exact (start_s, end_s, lower_m, upper_m), packed footprint rings (lon/lat), and a bound
    on its radius or half-width (m): half the diagonal of its bounding box at the largest metres per degree of
    WGS84 (111,320 m lon, 111,695 m lat). The footprints are read with one :func:`forewarn.geo.packed.pack` call
    for all volumes. Same arrays as ``query_arrays_slow`` in ``tests/oracles_strategic.py`` (tested)."""
    vols = operation.volumes
    h, vm, ts, pad = largest.horizontal_m, largest.vertical_m, largest.time_s, PREFILTER_PAD_DEG
    packed = pack([v.shape for v in vols])
    xs, ys = np.ascontiguousarray(packed.xy[:, 0]), np.ascontiguousarray(packed.xy[:, 1])
    ring_start = np.zeros(len(packed.ring_sizes) + 1, dtype=np.int64)
    np.cumsum(packed.ring_sizes, out=ring_start[1:])
    vol_rings = np.zeros(len(vols) + 1, dtype=np.int64)
    np.cumsum(packed.rings_per_shape, out=vol_rings[1:])
    first = ring_start[vol_rings[:-1]]
    bounds = np.column_stack([np.minimum.reduceat(xs, first), np.minimum.reduceat(ys, first),
                              np.maximum.reduceat(xs, first), np.maximum.reduceat(ys, first)])
    sizes = 0.5 * np.hypot((bounds[:, 2] - bounds[:, 0]) * 111_320.0, (bounds[:, 3] - bounds[:, 1]) * 111_695.0)
    rows, vals = [], []
    for v, bb in zip(vols, bounds.tolist(), strict=True):
        b = geodesy.expanded_bounds((bb[0], bb[1], bb[2], bb[3]), h)
        if b is None:
            b = v.buffered(h).bounds
        start, end = v.start_s, v.end_s
        rows.append((b[0] - pad, b[1] - pad, b[2] + pad, b[3] + pad, v.lower_m - vm, v.upper_m + vm,
                     start - ts, end + ts))
        vals.append((start, end, v.lower_m, v.upper_m))
    return (np.array(rows, dtype=np.float64), np.array(vals, dtype=np.float64), xs, ys, ring_start, vol_rings,
            sizes)


@dataclass
class Airspace:
    """Live operations (latest version each), the 4D index with their footprints packed, and the agreements.

    Each stored volume carries in the index a *tag* (the number of its (party, activity class)) and an *owner*
    (the number of its operation), so that the compiled screen checks party and agreement as integers. Of each
    live operation the airspace keeps a :class:`~forewarn.core.live.LiveEntry`; its full record is in
    ``operations`` (held, or loaded through ``loader`` on demand: see :mod:`forewarn.core.live`).
    """

    book: AgreementBook = field(default_factory=AgreementBook)
    index: VolumeIndex[VolumeKey] = field(default_factory=VolumeIndex)
    loader: OperationLoader | None = None
    """Loads a full record by (id, version); with one, records loaded in bulk (``put_many``) are not held."""
    revision: int = 0
    """Incremented by every change of the live operations (caches of derived views compare it)."""
    operations: LiveOperations = field(init=False)
    _tags: dict[tuple[str, str], int] = field(default_factory=dict)
    _owners: dict[str, int] = field(default_factory=dict)
    _by_owner: list[LiveEntry | None] = field(default_factory=list)
    _tables: dict[tuple[str, str], tuple[int, int, NDArray[np.float64], list[Bound | None]]] = field(
        default_factory=dict)

    def __post_init__(self) -> None:
        self.operations = LiveOperations(self.loader)

    def _tag(self, operation: Operation) -> int:
        return self._tags.setdefault((operation.party_id, operation.activity_class), len(self._tags))

    def _owner(self, entry: LiveEntry) -> int:
        owner = self._owners.setdefault(entry.id, len(self._owners))
        if owner == len(self._by_owner):
            self._by_owner.append(entry)
        else:
            self._by_owner[owner] = entry
        return owner

    def put(self, operation: Operation) -> None:
        """Add or replace an operation's volumes (call only for live operations); its full record is held."""
        self.remove(operation.id)
        self.revision += 1
        entry = self.operations.add(operation, hold=True)
        tag, owner = self._tag(operation), self._owner(entry)
        for i, volume in enumerate(operation.volumes):
            shape = volume.shape
            self.index.insert((operation.id, i), volume_box(shape, volume), tag=tag, owner=owner, shape=shape)

    def put_many(self, operations: Iterable[Operation]) -> None:
        """Load many live operations at once (index packed once, compiled kernels warmed). With a ``loader``
        their full records are not kept: only their entries and packed volumes."""
        self.revision += 1
        keys: list[VolumeKey] = []
        shapes: list[BaseGeometry] = []
        rows: list[tuple[float, float, float, float]] = []
        tags: list[int] = []
        owners: list[int] = []
        live = self.operations
        for operation in operations:
            op_id = operation.id
            if op_id in live:
                self.remove(op_id)
            tag, owner = self._tag(operation), self._owner(live.add(operation, hold=False))
            vols = operation.volumes
            keys.extend([(op_id, i) for i in range(len(vols))])
            shapes.extend([v.shape for v in vols])
            rows.extend([(v.lower_m, v.upper_m, v.start_s, v.end_s) for v in vols])
            tags.extend([tag] * len(vols))
            owners.extend([owner] * len(vols))
        boxes = np.empty((len(keys), 8))
        if keys:
            boxes[:, :4] = shapely.bounds(np.asarray(shapes, dtype=object))
            boxes[:, 4:] = np.asarray(rows)
        self.index.insert_arrays(keys, boxes, np.asarray(tags, dtype=np.int64), np.asarray(owners, dtype=np.int64),
                                 pack(shapes))
        del shapes
        kernels.warm()
        # the live picture is long-lived: keep its (many) objects out of the cyclic collector's full scans,
        # which otherwise stall queries for ~100 ms at a million volumes. No gc.collect() first: it cost a third
        # of the build; what garbage is frozen with them is at most what this load left behind, once.
        gc.freeze()

    def remove(self, operation_id: str) -> None:
        """Forget an operation (cancelled, completed or replaced)."""
        old = self.operations.discard(operation_id)
        if old is None:
            return
        self.revision += 1
        self._by_owner[self._owners[operation_id]] = None
        for i in range(old.volume_count):
            self.index.remove((operation_id, i))

    def entry(self, operation_id: str) -> LiveEntry:
        """What is kept of a live operation (no loading); ``KeyError`` if it is not live."""
        return self.operations.entries[operation_id]

    def shape(self, key: VolumeKey) -> BaseGeometry:
        """The footprint of a stored volume (rebuilt from the index's packed rings: the same coordinates)."""
        return self.index.shape(self.index.slot(key))

    def extent(self, key: VolumeKey) -> Extent:
        """The window (s) and altitude band (m) of a stored volume, from the index (no loading)."""
        row = self.index.box(self.index.slot(key))
        return Extent(row[6], row[7], row[4], row[5])

    def volume(self, key: VolumeKey) -> tuple[Operation, Volume4D, BaseGeometry]:
        """The full record of a stored volume's operation (may load it), the volume and its footprint."""
        op = self.operations[key[0]]
        return op, op.volumes[key[1]], self.shape(key)

    def tag_table(self, party: str, activity_class: str) -> NDArray[np.float64]:
        """(horizontal m, vertical m, time s) per tag for a volume of ``party`` and ``activity_class``, each already
        reduced by its tolerance (:func:`forewarn.units.effective_minimum`, horizontal not below 0: a tiny minimum
        means overlapping interiors), so the kernel's strict ``<`` follows the boundary rule; horizontal -1 where
        no conflict is possible (same party, or no agreement binds them). Cached per agreement revision."""
        return self._tables_for(party, activity_class)[0]

    def tag_bounds(self, party: str, activity_class: str) -> list[Bound | None]:
        """Per tag: the strictest minima and the deciding agreement for ``party``/``activity_class`` against a
        volume of that tag (:meth:`AgreementBook.minima`), ``None`` where no conflict is possible."""
        return self._tables_for(party, activity_class)[1]

    def _tables_for(self, party: str, activity_class: str) -> tuple[NDArray[np.float64], list[Bound | None]]:
        hit = self._tables.get((party, activity_class))
        if hit is not None and hit[0] == self.book.revision and hit[1] == len(self._tags):
            return hit[2], hit[3]
        table = np.full((max(1, len(self._tags)), 3), -1.0)
        bounds: list[Bound | None] = [None] * len(self._tags)
        for (their_party, their_class), tag in self._tags.items():
            if their_party == party:
                continue
            bound = self.book.minima(party, their_party, activity_class, their_class)
            if bound is not None:
                m = bound[0]  # the boundary rule (forewarn.units): a separation equal to a minimum is no loss
                table[tag] = (max(effective_minimum(m.horizontal_m), 0.0), effective_minimum(m.vertical_m),
                              effective_minimum(m.time_s, TIME_TOLERANCE_S))
                bounds[tag] = bound
        self._tables[(party, activity_class)] = (self.book.revision, len(self._tags), table, bounds)
        return table, bounds

    def screen(self, operation: Operation) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
        """One compiled call: (query volume index, stored slot, HIT or UNSURE) of every stored volume that may
        conflict with ``operation`` (MISS pairs are left out). See :mod:`forewarn.geo.kernels`."""
        largest = self.book.largest_for(operation.party_id)
        q = query_arrays(operation, largest)
        table = self.tag_table(operation.party_id, operation.activity_class)
        idx = self.index
        return kernels.detect_pairs(idx.grid(), *idx.stored(len(q[0])), *q, self._owners.get(operation.id, -1),
                                    table)

    def owner_entries(self, slots: NDArray[np.int64]) -> list[LiveEntry]:
        """The entries of the operations owning index slots ``slots`` (all live)."""
        by_owner = self._by_owner
        return [by_owner[o] for o in self.index.owners_of(slots).tolist()]
