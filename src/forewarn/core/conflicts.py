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

:func:`detect` answers with the 4D index (prefilter with the largest minima, exact test on survivors);
:func:`detect_brute_force` answers by testing every stored volume. They must agree exactly.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, TypeVar

import shapely
from pydantic import BaseModel, ConfigDict
from shapely.geometry.base import BaseGeometry

from forewarn.core.airspace import AgreementBook, Airspace
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


def decide_priority(
    rule: PriorityRule, mine: Operation, theirs: Operation, now: datetime | None
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
    theirs: Operation, j: int, b: Volume4D, shape_b: BaseGeometry,
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


def detect(
    operation: Operation, airspace: Airspace, now: datetime | None = None, *, measure: bool = True
) -> list[Conflict]:
    """Conflicts of ``operation`` with the live operations of ``airspace`` (index-accelerated).

    One compiled call (:meth:`Airspace.screen`) walks the grid, tests the 4D boxes, the party, agreement, time and
    altitude as numbers and screens the footprints with a conservative distance test; the few pairs it cannot
    decide within its stated tolerance (:mod:`forewarn.geo.kernels`) get the exact shapely test here. Conflict
    records are built only for the pairs reported. The operation itself (same id) is ignored, so an amendment is
    checked against everyone else. With ``measure=False`` the overlap figures are skipped (faster).
    """
    book = airspace.book
    if not book.bound_parties(operation.party_id):
        return []
    found: list[Conflict] = []
    pairs = sorted(airspace.screen(operation))
    refs: dict[int, VolumeRef] = {}  # one (frozen) record of each query volume, shared by its conflicts
    for i, key, verdict in pairs:
        a = operation.volumes[i]
        theirs = airspace.operations[key[0]]
        bound = book.minima(operation.party_id, theirs.party_id, operation.activity_class, theirs.activity_class)
        if bound is None:  # cannot happen: the screen only reports bound pairs
            continue
        minima, agreement = bound
        if verdict == UNSURE and not horizontal_hits(a, [airspace.shape(key)], minima.horizontal_m)[0]:
            continue
        if measure:
            _, b, shape_b = airspace.volume(key)
            found.append(describe_conflict(operation, i, a, a.shape, theirs, key[1], b, shape_b, minima,
                                           agreement, now))
        else:
            ref = refs.get(i)
            if ref is None:
                ref = refs[i] = _ref(operation, i)
            found.append(_unmeasured(operation, i, theirs, key[1], minima, agreement, now, ref))
    return found


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


def detect_brute_force(
    operation: Operation, others: Iterable[Operation], book: AgreementBook, now: datetime | None = None
) -> list[Conflict]:
    """The same answer as :func:`detect`, by testing every volume of every other operation."""
    found: list[Conflict] = []
    others = sorted((o for o in others if o.id != operation.id), key=lambda o: o.id)
    for i, a in enumerate(operation.volumes):
        shape_a = a.shape
        for theirs in others:
            for j, b in enumerate(theirs.volumes):
                found.extend(_test_pair(operation, i, a, shape_a, theirs, j, b, b.shape, book, now, True))
    return found


def _test_pair(
    mine: Operation, i: int, a: Volume4D, shape_a: BaseGeometry,
    theirs: Operation, j: int, b: Volume4D, shape_b: BaseGeometry, book: AgreementBook,
    now: datetime | None, measure: bool,
) -> list[Conflict]:
    if theirs.party_id == mine.party_id:
        return []
    bound = book.minima(mine.party_id, theirs.party_id, mine.activity_class, theirs.activity_class)
    if bound is None:
        return []
    minima, agreement = bound
    if not volumes_conflict(a, b, shape_b, minima):
        return []
    if not measure:
        return [_unmeasured(mine, i, theirs, j, minima, agreement, now)]
    return [describe_conflict(mine, i, a, shape_a, theirs, j, b, shape_b, minima, agreement, now)]


def _unmeasured(
    mine: Operation, i: int, theirs: Operation, j: int, minima: SeparationMinima, agreement: Agreement,
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


def _ref(op: Operation, i: int) -> VolumeRef:
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
