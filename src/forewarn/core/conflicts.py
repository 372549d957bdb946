"""Strategic conflict detection: which volumes of other parties an operation comes too close to.

Two volumes A and B of different parties bound by an agreement conflict when, under the strictest minima
(h metres, v metres, t seconds) of the agreements binding them, all three hold:

* time:     ``B.start < A.end + t - eps_t`` and ``B.end > A.start - t + eps_t``
* altitude: ``B.lower < A.upper + v - eps`` and ``B.upper > A.lower - v + eps``
* space:    B's footprint meets A's footprint buffered geodesically by ``h - eps`` (h > eps), or their
            interiors overlap (h <= eps; touching edges are not a conflict).

This is the boundary rule of :mod:`forewarn.units` (``gap < minimum - tolerance``, ``eps`` = 1 cm, ``eps_t`` = 1 ms):
a separation equal to the minimum is never a conflict (volumes stacked exactly 1,000 ft apart under a 1,000 ft
minimum are separated, whatever the rounding of their flight-level conversion); a gap 1 cm under it always is.

:func:`find_conflicts` answers with the 4D index: one compiled call screens every candidate (prefilter with the
largest minima, party, agreement, time and altitude as numbers, a conservative footprint distance test), the few
pairs the screen cannot decide get the exact shapely test, and the result is the decided pairs, whose
:class:`Conflict` records are built only when read. :func:`detect` is the same as a list of records. The
exhaustive twin the tests hold them to (``tests/oracles_strategic.py``) tests every stored volume; they must
agree exactly.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar, overload

import numpy as np
import shapely
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict
from shapely.geometry.base import BaseGeometry

from forewarn.core.airspace import Airspace, Bound, VolumeKey
from forewarn.core.live import LiveEntry
from forewarn.core.model import Agreement, Operation, PriorityRule, SeparationMinima
from forewarn.geo import geodesy
from forewarn.geo.kernels import UNSURE
from forewarn.geo.volume import Volume4D
from forewarn.units import TIME_TOLERANCE_S, effective_minimum


class Overlap(BaseModel):
    """Where two volumes overlap: horizontal area (km^2, 0 if the footprints only come within the minimum),
    a representative point (lon, lat WGS84), altitude overlap (m) and time overlap (s); negative overlaps are
    gaps."""

    model_config = ConfigDict(frozen=True)

    area_km2: float
    point: tuple[float, float]
    altitude_overlap_m: float
    time_overlap_s: float


class Separation(BaseModel):
    """The separation actually found between two volumes: horizontal (m), vertical (m), time (s)."""

    model_config = ConfigDict(frozen=True)

    horizontal_m: float
    vertical_m: float
    time_s: float


class VolumeRef(BaseModel):
    """One side of a conflict: the operation, its version, the volume's position, owner and class."""

    model_config = ConfigDict(frozen=True)

    operation_id: str
    version: int
    volume_index: int
    party_id: str
    activity_class: str


class Conflict(BaseModel):
    """Two volumes of different parties that come closer than their agreement's minima."""

    model_config = ConfigDict(frozen=True)

    a: VolumeRef
    b: VolumeRef
    agreement_id: str
    minima: SeparationMinima
    overlap: Overlap
    separation: Separation
    adjusting_operation: str
    holding_operation: str
    priority_reason: str

    @property
    def pair(self) -> tuple[str, int, str, int]:
        """(operation a, volume a, operation b, volume b): identifies the conflict."""
        return (self.a.operation_id, self.a.volume_index, self.b.operation_id, self.b.volume_index)


def volumes_conflict(a: Volume4D, b: Volume4D, shape_b: BaseGeometry, minima: SeparationMinima) -> bool:
    """The exact 4D test of B against A under ``minima`` (see the module docstring)."""
    return in_time_and_band(a, b, minima) and horizontal_hits(a, [shape_b], minima.horizontal_m)[0]


class Notified(Protocol):
    """What priority rules read of an operation (an :class:`Operation` or a live entry)."""

    @property
    def id(self) -> str: ...
    @property
    def activity_class(self) -> str: ...
    @property
    def notified_at(self) -> datetime | None: ...


class Named(Notified, Protocol):
    """What a conflict record names of an operation (an :class:`Operation` or a live entry)."""

    @property
    def version(self) -> int: ...
    @property
    def party_id(self) -> str: ...


class Spanning(Protocol):
    """A window (epoch seconds UTC) and an altitude band (metres): a :class:`Volume4D` or an ``Extent``."""

    @property
    def start_s(self) -> float: ...
    @property
    def end_s(self) -> float: ...
    @property
    def lower_m(self) -> float: ...
    @property
    def upper_m(self) -> float: ...


def decide_priority(
    rule: PriorityRule, mine: Notified, theirs: Notified, now: datetime | None
) -> tuple[str, str, str]:
    """Return (adjusting operation id, holding operation id, reason) under ``rule``.

    ``mine`` is the operation being filed or checked; if it has no ``notified_at`` it counts as notified
    at ``now`` (after anything already stored).
    """
    if rule.rule == "class_ranking":
        rank = {c: i for i, c in enumerate(rule.ranking)}
        rm = rank.get(mine.activity_class, len(rule.ranking))
        rt = rank.get(theirs.activity_class, len(rule.ranking))
        if rm != rt:
            holder, adjuster = (mine, theirs) if rm < rt else (theirs, mine)
            return adjuster.id, holder.id, (
                f"class ranking: {holder.activity_class} holds over {adjuster.activity_class}"
            )
    mine_at = mine.notified_at or now
    theirs_at = theirs.notified_at
    # ties go against the operation being filed now: it is the one that can still change.
    if theirs_at is not None and (mine_at is None or mine_at >= theirs_at):
        return mine.id, theirs.id, "first notified holds the airspace"
    return theirs.id, mine.id, "first notified holds the airspace"


def describe_conflict(
    mine: Operation, i: int, a: Volume4D, shape_a: BaseGeometry,
    theirs: Named, j: int, b: Spanning, shape_b: BaseGeometry,
    minima: SeparationMinima, agreement: Agreement, now: datetime | None,
) -> Conflict:
    """Measure a conflict: overlap, separation found, and which side is asked to adjust."""
    inter = shape_a.intersection(shape_b)
    if inter.is_empty or inter.area == 0:
        pa, pb = shapely.shortest_line(shape_a, shape_b).coords
        point = ((pa[0] + pb[0]) / 2, (pa[1] + pb[1]) / 2)
        area = 0.0
    else:
        rp = inter.representative_point()
        point = (rp.x, rp.y)
        area = geodesy.geodesic_area_m2(inter) / 1e6
    alt_overlap = min(a.upper_m, b.upper_m) - max(a.lower_m, b.lower_m)
    time_overlap = min(a.end_s, b.end_s) - max(a.start_s, b.start_s)
    adjusting, holding, reason = decide_priority(agreement.priority, mine, theirs, now)
    return Conflict(
        a=VolumeRef(operation_id=mine.id, version=mine.version, volume_index=i, party_id=mine.party_id,
                    activity_class=mine.activity_class),
        b=VolumeRef(operation_id=theirs.id, version=theirs.version, volume_index=j, party_id=theirs.party_id,
                    activity_class=theirs.activity_class),
        agreement_id=agreement.id,
        minima=minima,
        overlap=Overlap(area_km2=area, point=point, altitude_overlap_m=alt_overlap, time_overlap_s=time_overlap),
        separation=Separation(
            horizontal_m=geodesy.geodesic_distance_m(shape_a, shape_b),
            vertical_m=max(0.0, -alt_overlap),
            time_s=max(0.0, -time_overlap),
        ),
        adjusting_operation=adjusting,
        holding_operation=holding,
        priority_reason=reason,
    )


Hit = tuple[int, VolumeKey, LiveEntry, Bound]
"""A decided pair: (query volume index, stored volume key, its operation's entry, minima and agreement)."""


class Conflicts(Sequence[Conflict]):
    """The conflicts one detection found: the decided pairs, their :class:`Conflict` records built on first read,
    in (query volume, their operation id, their volume) order. ``len`` and :meth:`pairs` build no record.

    Everything a record needs is captured at detection (the entries, the minima; for ``measure`` the stored
    footprint and extent), so later changes of the airspace do not change it."""

    __slots__ = ("_hits", "_measured", "_mine", "_now", "_records")

    def __init__(self, mine: Operation, hits: list[Hit], now: datetime | None,
                 measured: list[tuple[BaseGeometry, Spanning]] | None = None) -> None:
        self._mine, self._hits, self._now, self._measured = mine, hits, now, measured
        self._records: list[Conflict] | None = None

    def pairs(self) -> list[tuple[int, str, int]]:
        """(query volume index, their operation id, their volume index) of each conflict, in no set order."""
        return [(i, key[0], key[1]) for i, key, _, _ in self._hits]

    def records(self) -> list[Conflict]:
        """The :class:`Conflict` records (built now if not yet)."""
        if self._records is None:
            self._records = self._build()
        return self._records

    def _build(self) -> list[Conflict]:
        mine, now = self._mine, self._now
        order = sorted(range(len(self._hits)), key=lambda k: self._hits[k][:2])
        if self._measured is not None:
            out = []
            for k in order:
                i, key, entry, (minima, agreement) = self._hits[k]
                a = mine.volumes[i]
                shape_b, b = self._measured[k]
                out.append(describe_conflict(mine, i, a, a.shape, entry, key[1], b, shape_b, minima, agreement, now))
            return out
        refs: dict[int, VolumeRef] = {}  # one (frozen) record of each query volume, shared by its conflicts
        out = []
        for k in order:
            i, key, entry, (minima, agreement) = self._hits[k]
            ref = refs.get(i)
            if ref is None:
                ref = refs[i] = _ref(mine, i)
            out.append(_unmeasured(mine, i, entry, key[1], minima, agreement, now, ref))
        return out

    def __len__(self) -> int:
        return len(self._hits)

    @overload
    def __getitem__(self, k: int) -> Conflict: ...
    @overload
    def __getitem__(self, k: slice) -> list[Conflict]: ...

    def __getitem__(self, k: int | slice) -> Conflict | list[Conflict]:
        return self.records()[k]

    def __iter__(self) -> Iterator[Conflict]:
        return iter(self.records())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Conflicts | list | tuple):
            return self.records() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Conflicts({len(self)} pairs)"


def find_conflicts(
    operation: Operation, airspace: Airspace, now: datetime | None = None, *, measure: bool = True
) -> Conflicts:
    """Conflicts of ``operation`` with the live operations of ``airspace`` (index-accelerated), as decided pairs.

    One compiled call (:meth:`Airspace.screen`) walks the grid, tests the 4D boxes, the party, agreement, time and
    altitude as numbers and screens the footprints with a conservative distance test; the few pairs it cannot
    decide within its stated tolerance (:mod:`forewarn.geo.kernels`) get the exact shapely test here. No
    record is built here (see :class:`Conflicts`). The operation itself (same id) is ignored, so an amendment
    is checked against everyone else. With ``measure=False`` the records' overlap figures are left at zero.
    """
    if not airspace.book.bound_to(operation.party_id):
        return Conflicts(operation, [], now)
    qi, slots, verdicts = airspace.screen(operation)
    bounds = airspace.tag_bounds(operation.party_id, operation.activity_class)
    tags = airspace.index.tags_of(slots)
    unsure = np.flatnonzero(verdicts == UNSURE)
    if len(unsure):
        keep = np.ones(len(slots), dtype=bool)
        keep[unsure] = _exact(operation, airspace, qi[unsure], slots[unsure], tags[unsure], bounds)
        qi, slots, tags = qi[keep], slots[keep], tags[keep]
    index = airspace.index
    keys = [index.key(s) for s in slots.tolist()]
    hits: list[Hit] = list(zip(qi.tolist(), keys, airspace.owner_entries(slots),
                               [bounds[t] for t in tags.tolist()], strict=True))
    measured: list[tuple[BaseGeometry, Spanning]] | None = None
    if measure:
        measured = [(airspace.shape(key), airspace.extent(key)) for key in keys]
    return Conflicts(operation, hits, now, measured)


def _exact(operation: Operation, airspace: Airspace, qi: NDArray[np.int64], slots: NDArray[np.int64],
           tags: NDArray[np.int64], bounds: list[Bound | None]) -> NDArray[np.bool_]:
    """The exact horizontal test (:func:`horizontal_hits`) of the pairs the screen left UNSURE, grouped by
    query volume and horizontal minimum (one vectorised shapely call per group)."""
    out = np.zeros(len(slots), dtype=bool)
    hs = np.array([bounds[t][0].horizontal_m for t in tags.tolist()])
    for i, h in sorted(set(zip(qi.tolist(), hs.tolist(), strict=True))):
        at = np.flatnonzero((qi == i) & (hs == h))
        shapes = [airspace.index.shape(int(s)) for s in slots[at]]
        out[at] = horizontal_hits(operation.volumes[i], shapes, h)
    return out


def detect(
    operation: Operation, airspace: Airspace, now: datetime | None = None, *, measure: bool = True
) -> list[Conflict]:
    """:func:`find_conflicts` as a list of :class:`Conflict` records."""
    return find_conflicts(operation, airspace, now, measure=measure).records()


def in_time_and_band(a: Volume4D, b: Volume4D, minima: SeparationMinima) -> bool:
    """The time and altitude parts of the 4D test (see the module docstring)."""
    t = effective_minimum(minima.time_s, TIME_TOLERANCE_S)
    v = effective_minimum(minima.vertical_m)
    return (b.start_s < a.end_s + t and b.end_s > a.start_s - t
            and b.lower_m < a.upper_m + v and b.upper_m > a.lower_m - v)


def horizontal_hits(a: Volume4D, shapes: list[BaseGeometry], h: float) -> list[bool]:
    """For each footprint, whether it comes closer than ``h`` metres to A's footprint under the boundary rule:
    meets A's footprint buffered geodesically by ``h - 1 cm`` (h > 1 cm), or overlaps A's interior (smaller h);
    one vectorised shapely call against the prepared buffer."""
    if not shapes:
        return []
    reach = effective_minimum(h)
    if reach > 0:
        return [bool(x) for x in shapely.intersects(a.buffered(reach), shapes)]
    shape_a = a.shape
    return [bool(x) for x in shapely.intersects(shape_a, shapes) & ~shapely.touches(shape_a, shapes)]


def _unmeasured(
    mine: Operation, i: int, theirs: Named, j: int, minima: SeparationMinima, agreement: Agreement,
    now: datetime | None, ref_a: VolumeRef | None = None,
) -> Conflict:
    # built without validation: every value comes from validated records; this is the hot path. _trusted sets the
    # same attributes as model_construct (all fields given) without its per-field alias scan (3x cheaper)
    adjusting, holding, reason = decide_priority(agreement.priority, mine, theirs, now)
    return _trusted(Conflict, {
        "a": _ref(mine, i) if ref_a is None else ref_a, "b": _ref(theirs, j),
        "agreement_id": agreement.id, "minima": minima, "overlap": _NO_OVERLAP, "separation": _NO_SEPARATION,
        "adjusting_operation": adjusting, "holding_operation": holding, "priority_reason": reason,
    })


def _ref(op: Named, i: int) -> VolumeRef:
    return _trusted(VolumeRef, {"operation_id": op.id, "version": op.version, "volume_index": i,
                                "party_id": op.party_id, "activity_class": op.activity_class})


_M = TypeVar("_M", bound=BaseModel)
_setattr = object.__setattr__


def _trusted(cls: type[_M], values: dict[str, Any]) -> _M:
    """``cls.model_construct(**values)`` for a model without aliases, defaults used or private attributes, given
    every field (tested equal to model_construct)."""
    m = cls.__new__(cls)
    _setattr(m, "__dict__", values)
    _setattr(m, "__pydantic_fields_set__", set(values))
    _setattr(m, "__pydantic_extra__", None)
    _setattr(m, "__pydantic_private__", None)
    return m


_NO_OVERLAP = Overlap(area_km2=0, point=(0.0, 0.0), altitude_overlap_m=0, time_overlap_s=0)
_NO_SEPARATION = Separation(horizontal_m=0, vertical_m=0, time_s=0)
