"""The live picture: the latest version of every live operation, indexed in 4D, and the agreements.

No I/O: the service fills it from the store at start and keeps it in step with every committed write.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from shapely.geometry.base import BaseGeometry

from forewarn.core.model import ZERO_MINIMA, Agreement, Operation, SeparationMinima
from forewarn.geo import geodesy
from forewarn.geo.index import Box4D, VolumeIndex
from forewarn.geo.volume import Volume4D

VolumeKey = tuple[str, int]
"""(operation id, volume index) of a stored volume."""


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
        return {p for ag in self._agreements.values() if party in ag.parties for p in ag.parties} - {party}

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


@dataclass
class Airspace:
    """Live operations (latest version each), their footprint shapes, the 4D index and the agreements."""

    book: AgreementBook = field(default_factory=AgreementBook)
    index: VolumeIndex[VolumeKey] = field(default_factory=VolumeIndex)
    operations: dict[str, Operation] = field(default_factory=dict)
    shapes: dict[VolumeKey, BaseGeometry] = field(default_factory=dict)
    revision: int = 0
    """Incremented by every change of the live operations (caches of derived views compare it)."""

    def put(self, operation: Operation) -> None:
        """Add or replace an operation's volumes (call only for live operations)."""
        self.remove(operation.id)
        self.revision += 1
        self.operations[operation.id] = operation
        for i, volume in enumerate(operation.volumes):
            shape = volume.shape
            self.shapes[(operation.id, i)] = shape
            self.index.insert((operation.id, i), volume_box(shape, volume))

    def put_many(self, operations: Iterable[Operation]) -> None:
        """Load many live operations at once (index packed once)."""
        self.revision += 1
        items = []
        for operation in operations:
            self.remove(operation.id)
            self.operations[operation.id] = operation
            for i, volume in enumerate(operation.volumes):
                shape = volume.shape
                self.shapes[(operation.id, i)] = shape
                items.append(((operation.id, i), volume_box(shape, volume)))
        self.index.insert_many(items)
        # the live picture is long-lived: keep its (many) objects out of the cyclic collector's full scans,
        # which otherwise stall queries for ~100 ms at a million volumes
        gc.collect()
        gc.freeze()

    def remove(self, operation_id: str) -> None:
        """Forget an operation (cancelled, completed or replaced)."""
        old = self.operations.pop(operation_id, None)
        if old is None:
            return
        self.revision += 1
        for i in range(len(old.volumes)):
            self.index.remove((operation_id, i))
            self.shapes.pop((operation_id, i), None)

    def volume(self, key: VolumeKey) -> tuple[Operation, Volume4D, BaseGeometry]:
        op = self.operations[key[0]]
        return op, op.volumes[key[1]], self.shapes[key]
