"""What party X may see of party Y's records: the one gate every read path goes through.

* The owner sees everything of its own operations.
* Another party sees nothing of an operation still ``planned`` (private to its party), and nothing at all of
  the operations of a party no agreement binds it to (``None``).
* A party bound to the owner by at least one agreement sees the **safety envelope**: id, owner, activity
  class, state, version, volumes (footprint, altitudes, times), notification time, and the agreements'
  contact channels.
* **Coarsening**: when an agreement binding the two requires the owner's envelope to be coarsened
  (:class:`~forewarn.core.model.Coarsening`), the volumes shown are the coarsened ones (outward lon/lat grid or
  convex hull as a polygon footprint, altitudes and times rounded outward, see :mod:`forewarn.geo.coarsen`),
  and the envelope says so in ``coarsening``. With several such agreements the coarsest setting applies.
* Planning detail (purpose, unit, call signs, notes) is released field by field: only where an agreement
  binding both has ``sharing: planning_detail`` and lists the viewer under that field in ``released_fields``.
* Conflicts and proposals: detection and resolution use the exact volumes; what a party is shown of a
  conflict with a coarsened counterpart (overlap, separation) is measured against the coarsened volumes,
  proposals for its own operation are recomputed against them (or withheld when the live picture is not at
  hand), and it never sees the proposals made for another party's operation.
* Everything a party is *told* about an operation coarsened for it (site warnings on its sites, conflicts with
  its operations, subscriptions met, lead times) is decided on the coarsened volumes:
  :mod:`forewarn.core.disclosure`.

Units as everywhere: metres above the WGS84 ellipsoid, metres, seconds, UTC, WGS84 lon/lat degrees.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from forewarn.core.airspace import AgreementBook, Airspace, search_box
from forewarn.core.conflicts import Conflict, Overlap, Separation, describe_conflict, detect
from forewarn.core.model import Coarsening, Operation, OperationState, SharingLevel
from forewarn.core.records import Delivery, NoticeOutcome, impact_of
from forewarn.core.resolutions import ResolutionBounds, ResolutionSet, propose
from forewarn.geo import geodesy
from forewarn.geo.coarsen import coarsen_volume
from forewarn.geo.volume import Volume4D
from forewarn.units import FOOT_M

OperationLookup = Callable[[str, int], Operation | None]
"""(operation id, version) -> that version of the operation, if known."""

WITHHELD_PROPOSALS = ("proposals withheld: they would be computed from the exact volumes of a party whose "
                      "safety envelope is coarsened for you")


def released_detail_fields(viewer: str, owner: str, book: AgreementBook) -> set[str]:
    """Planning-detail fields of ``owner``'s operations released to ``viewer``."""
    fields: set[str] = set()
    for agreement in book.binding(viewer, owner):
        if agreement.sharing == SharingLevel.PLANNING_DETAIL:
            fields |= {f for f, partners in agreement.released_fields.items() if viewer in partners}
    return fields


def can_see(viewer: str, owner: str, book: AgreementBook) -> bool:
    """Whether ``viewer`` may see anything of ``owner``'s records."""
    return viewer == owner or bool(book.binding(viewer, owner))


def coarsening_for(viewer: str, owner: str, book: AgreementBook) -> Coarsening | None:
    """The coarsening ``viewer`` sees ``owner``'s operations through (the coarsest of the agreements binding
    them that coarsen ``owner``), or ``None`` for the exact envelope."""
    if viewer == owner:
        return None
    out: Coarsening | None = None
    for agreement in book.binding(viewer, owner):
        c = agreement.coarsening
        if c is not None and c.applies_to(owner):
            out = c.model_copy(update={"of": []}) if out is None else out.merged(c)
    return out


def envelope_volumes(viewer: str, op: Operation, book: AgreementBook) -> list[Volume4D]:
    """The volumes of ``op`` as ``viewer`` is shown them (exact, or coarsened). The caller checks visibility."""
    coarsening = coarsening_for(viewer, op.party_id, book)
    if coarsening is None:
        return list(op.volumes)
    return [coarsen_volume(v, coarsening) for v in op.volumes]


ENVELOPE_FIELDS = ("id", "party_id", "activity_class", "state", "version", "volumes", "notified_at")
"""The operation fields of the safety envelope (plus the agreements' contact channels)."""


def visible(viewer: str, op: Operation, book: AgreementBook) -> bool:
    """Whether ``viewer`` may see anything of ``op``."""
    if viewer == op.party_id:
        return True
    return op.state != OperationState.PLANNED and bool(book.binding(viewer, op.party_id))


def view_operation(viewer: str, op: Operation, book: AgreementBook,
                   dump: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """``op`` as ``viewer`` may see it (JSON-ready), or ``None`` when it may see nothing of it. ``dump`` may
    pass ``op.model_dump(mode="json")`` when many views of one operation are made."""
    full = dump if dump is not None else op.model_dump(mode="json")
    if viewer == op.party_id:
        return dict(full)
    if not visible(viewer, op, book):
        return None
    agreements = book.binding(viewer, op.party_id)
    envelope = {k: full[k] for k in ENVELOPE_FIELDS}
    coarsening = coarsening_for(viewer, op.party_id, book)
    if coarsening is not None:
        envelope["volumes"] = [v.model_dump(mode="json") for v in envelope_volumes(viewer, op, book)]
        envelope["coarsening"] = coarsening.model_dump(mode="json", exclude={"of"})
    envelope["contact"] = [
        {"agreement_id": a.id, "primary": a.primary_channel.model_dump(),
         "backup": a.backup_channel.model_dump() if a.backup_channel else None}
        for a in agreements
    ]
    released = released_detail_fields(viewer, op.party_id, book)
    if released:
        envelope["detail"] = {k: v for k, v in full["detail"].items() if k in released}
    return envelope


# ------------------------------------------------------------------------------------------------ conflicts
def lookup_in(operations: Iterable[Operation], airspace: Airspace | None = None,
              fallback: OperationLookup | None = None) -> OperationLookup:
    """A lookup over ``operations`` (first), the live operations of ``airspace``, then ``fallback`` (e.g. the
    store), by id and version."""
    known = {(o.id, o.version): o for o in operations}

    def find(operation_id: str, version: int) -> Operation | None:
        hit = known.get((operation_id, version))
        if hit is None and airspace is not None:
            live = airspace.operations.get(operation_id)
            if live is not None and live.version == version:
                hit = live
        if hit is None and fallback is not None:
            hit = fallback(operation_id, version)
        return hit

    return find


def _bound_figures(coarse: Volume4D) -> tuple[Overlap, Separation]:
    """Figures derived from a coarsened volume alone (the viewer's own volume is not at hand): upper bounds
    of the overlap (the coarsened volume's area, band and window), separation 0."""
    shape = coarse.shape
    point = shape.representative_point()
    return (Overlap(area_km2=geodesy.geodesic_area_m2(shape) / 1e6, point=(point.x, point.y),
                    altitude_overlap_m=coarse.upper_m - coarse.lower_m,
                    time_overlap_s=coarse.end_s - coarse.start_s),
            Separation(horizontal_m=0.0, vertical_m=0.0, time_s=0.0))


def view_conflict(viewer: str, conflict: Conflict, lookup: OperationLookup, book: AgreementBook) -> Conflict | None:
    """``conflict`` as ``viewer`` (one of its two sides) is shown it: as found, or, when the other side is
    coarsened for ``viewer``, with overlap and separation measured between the viewer's exact volume and the
    other side's coarsened one. ``None`` when ``viewer`` is neither side."""
    if viewer == conflict.a.party_id:
        mine_ref, theirs_ref = conflict.a, conflict.b
    elif viewer == conflict.b.party_id:
        mine_ref, theirs_ref = conflict.b, conflict.a
    else:
        return None
    coarsening = coarsening_for(viewer, theirs_ref.party_id, book)
    if coarsening is None:
        return conflict
    mine = lookup(mine_ref.operation_id, mine_ref.version)
    theirs = lookup(theirs_ref.operation_id, theirs_ref.version)
    agreement = book.get(conflict.agreement_id)
    if theirs is None:
        # nothing of the other side can be measured: show no figures at all
        overlap = Overlap(area_km2=0.0, point=(0.0, 0.0), altitude_overlap_m=0.0, time_overlap_s=0.0)
        return conflict.model_copy(update={"overlap": overlap, "separation": Separation(
            horizontal_m=0.0, vertical_m=0.0, time_s=0.0)})
    coarse = coarsen_volume(theirs.volumes[theirs_ref.volume_index], coarsening)
    if mine is None or agreement is None:
        overlap, separation = _bound_figures(coarse)
    else:
        own = mine.volumes[mine_ref.volume_index]
        measured = describe_conflict(mine, mine_ref.volume_index, own, own.shape, theirs, theirs_ref.volume_index,
                                     coarse, coarse.shape, conflict.minima, agreement, None)
        overlap, separation = measured.overlap, measured.separation
    return conflict.model_copy(update={"overlap": overlap, "separation": separation})


def coarsened_counterparts(viewer: str, conflicts: Iterable[Conflict], book: AgreementBook) -> bool:
    """Whether any of ``conflicts`` has, on the side that is not ``viewer``'s, a party coarsened for it."""
    for c in conflicts:
        other = c.b.party_id if c.a.party_id == viewer else c.a.party_id
        if coarsening_for(viewer, other, book) is not None:
            return True
    return False


# ------------------------------------------------------------------------------------------------ proposals
def coarse_overlay(viewer: str, own: Operation, airspace: Airspace, extra: Iterable[Operation],
                   bounds: ResolutionBounds) -> Airspace:
    """A small live picture for proposals to ``viewer``'s operation ``own``: every live operation (and ``extra``,
    which replaces a live one of the same id) within reach of any change the search could propose, each as
    ``viewer`` is shown it (coarsened where an agreement says so). A proposal that clears the overlay clears
    the exact picture too: coarsened volumes contain the exact ones."""
    book = airspace.book
    largest = book.largest_for(own.party_id)
    # a coarsened volume reaches at most one grid cell (1' of latitude = 1,852 m; a cell is no wider), one
    # altitude step and one time step beyond the exact one, whose box the index holds
    grid_m, step_m, step_s = 0.0, 0.0, 0.0
    for party in book.bound_parties(viewer):
        c = coarsening_for(viewer, party, book)
        if c is not None:
            grid_m = max(grid_m, (c.grid_arcmin or 0.0) * 1852.0 * 1.5)
            step_m, step_s = max(step_m, c.altitude_step_ft * FOOT_M), max(step_s, c.time_step_s)
    reach = largest.model_copy(update={"horizontal_m": largest.horizontal_m + bounds.max_lateral_m + grid_m})
    widen_m = bounds.ceiling_m - bounds.floor_m + max(v.upper_m - v.lower_m for v in own.volumes) + step_m
    ids: set[str] = set()
    for volume in own.volumes:
        box = search_box(volume, reach, bounds.max_time_shift_s + step_s, widen_m)
        ids.update(key[0] for key in airspace.index.query(box))
    ops = {i: airspace.operations[i] for i in ids}
    for op in extra:
        ops[op.id] = op
    overlay = Airspace(book=book)
    for op in ops.values():
        if op.id == own.id or op.party_id == own.party_id:
            continue
        overlay.put(op.model_copy(update={"volumes": envelope_volumes(viewer, op, book)}))
    return overlay


def view_resolutions(viewer: str, resolutions: Iterable[ResolutionSet], own: Mapping[str, Operation | None],
                     conflicts: list[Conflict], book: AgreementBook, now: datetime,
                     airspace: Airspace | None = None, extra: Iterable[Operation] = (),
                     bounds: ResolutionBounds | None = None) -> list[ResolutionSet]:
    """The proposals ``viewer`` is shown: only those for its own operations (the keys of ``own``, with the
    operation where known); when a conflict of that operation has a counterpart coarsened for ``viewer``,
    recomputed against the coarsened volumes (:func:`coarse_overlay`), or withheld when ``airspace`` or the
    operation is not at hand."""
    out: list[ResolutionSet] = []
    extra = list(extra)
    for r in resolutions:
        if r.operation_id not in own:
            continue
        op = own[r.operation_id]
        mine = [c for c in conflicts if r.operation_id in (c.a.operation_id, c.b.operation_id)]
        if not coarsened_counterparts(viewer, mine, book):
            out.append(r)
        elif airspace is None or op is None or op.party_id != viewer:
            out.append(ResolutionSet(operation_id=r.operation_id, conflicts_cleared=r.conflicts_cleared, options=[],
                                     not_found=[WITHHELD_PROPOSALS]))
        else:
            b = bounds or ResolutionBounds()
            out.append(propose(op, coarse_overlay(viewer, op, airspace, extra, b), now, b))
    return out


def view_outcome(viewer: str, outcome: NoticeOutcome, op: Operation, book: AgreementBook,
                 airspace: Airspace | None = None, bounds: ResolutionBounds | None = None,
                 fallback: OperationLookup | None = None) -> NoticeOutcome:
    """The outcome of ``viewer``'s own filing or check of ``op`` as ``viewer`` is shown it: its conflicts through
    :func:`view_conflict`, only the proposals for its own operation (:func:`view_resolutions`); lead times and
    site warnings on its own operation as found.

    A what-if check or a filing could be repeated with small probes to find where a coarsened envelope really
    is. With the live ``airspace`` the conflicts with parties coarsened for ``viewer`` are therefore *detected*
    against their coarsened volumes (:func:`check_against_shown`), not only measured against them: a probe
    conflicts with a coarsened operation wherever the coarsened volume would (over-warning, the safe side). The
    stored notice keeps what the exact volumes gave; without ``airspace`` (a report of past notices) the
    conflicts are those found, measured against the coarsened volumes."""
    if viewer != outcome.party_id or op.party_id != viewer:
        raise ValueError("an outcome is shown only to the party that filed it")
    if airspace is not None and outcome.kind in ("check", "notify", "amend"):
        shown = check_against_shown(viewer, outcome, op, airspace, bounds or ResolutionBounds())
        if shown is not None:
            return shown
    lookup = lookup_in([op], airspace, fallback)
    conflicts = [v for c in outcome.conflicts if (v := view_conflict(viewer, c, lookup, book)) is not None]
    resolutions = view_resolutions(viewer, outcome.resolutions, {op.id: op}, outcome.conflicts, book, outcome.at,
                                   airspace, (), bounds)
    return outcome.model_copy(update={"conflicts": conflicts, "resolutions": resolutions})


def check_against_shown(viewer: str, outcome: NoticeOutcome, op: Operation, airspace: Airspace,
                        bounds: ResolutionBounds) -> NoticeOutcome | None:
    """A what-if check of ``op`` re-run against the picture as ``viewer`` is shown it (:func:`coarse_overlay`):
    conflicts, proposals for ``op`` and the impacts on the coarsened parties all from the coarsened volumes.
    ``None`` when no party bound to ``viewer`` is coarsened for it (the outcome stands as found)."""
    book = airspace.book
    coarse = {p for p in book.bound_parties(viewer) if coarsening_for(viewer, p, book) is not None}
    if not coarse:
        return None
    overlay = coarse_overlay(viewer, op, airspace, [], bounds)
    conflicts = detect(op, overlay, outcome.at)
    resolutions = [propose(op, overlay, outcome.at, bounds)] if any(
        c.adjusting_operation == op.id for c in conflicts) else []
    impacts = []
    for impact in outcome.impacts:
        if impact.party_id not in coarse:
            impacts.append(impact)
            continue
        mine = [c for c in conflicts if c.b.party_id == impact.party_id]
        sites = sum(1 for w in outcome.site_warnings if w.registered_by == impact.party_id)  # on the filer's op
        impacts.append(impact_of(impact.party_id, op.id, mine, sites, " with its coarsened envelope"))
    return outcome.model_copy(update={"conflicts": conflicts, "resolutions": resolutions, "impacts": impacts})


# ------------------------------------------------------------------------------------------------ deliveries
def view_delivery(viewer: str, delivery: Delivery, book: AgreementBook) -> Delivery | None:
    """A stored delivery as ``viewer`` may read it now: ``None`` if it is not ``viewer``'s. Its payload was built
    through this gate when the notice was committed; what the agreements no longer allow is withheld again
    (an agreement ended: the operation and everything about it; a field no longer released; an envelope now
    coarsened: the volumes coarsened; an alert about a live track of a party no agreement binds ``viewer`` to any
    more, or naming such a party on its other side: the whole alert)."""
    if delivery.party_id != viewer:
        return None
    payload = delivery.payload
    if payload.get("type") == "alert":
        return _view_alert_delivery(viewer, delivery, book)
    owner = payload.get("from_party")
    shown = payload.get("operation")
    if not isinstance(owner, str) or not isinstance(shown, dict) or owner == viewer:
        return delivery
    update: dict[str, Any] = {}
    if not book.binding(viewer, owner):
        update = {"operation": None, "conflicts": [], "resolutions": [], "site_warnings": [],
                  "message": "withheld: no agreement binds you to the notifying party any more"}
    else:
        restricted = dict(shown)
        released = released_detail_fields(viewer, owner, book)
        detail = restricted.pop("detail", None)
        if isinstance(detail, dict) and released:
            restricted["detail"] = {k: v for k, v in detail.items() if k in released}
        coarsening = coarsening_for(viewer, owner, book)
        if coarsening is not None and restricted.get("coarsening") != coarsening.model_dump(mode="json",
                                                                                           exclude={"of"}):
            volumes = [coarsen_volume(Volume4D.model_validate(v), coarsening) for v in restricted.get("volumes", [])]
            restricted["volumes"] = [v.model_dump(mode="json") for v in volumes]
            restricted["coarsening"] = coarsening.model_dump(mode="json", exclude={"of"})
        if restricted != shown:
            update = {"operation": restricted}
    if not update:
        return delivery
    return delivery.model_copy(update={"payload": payload | update})


def _view_alert_delivery(viewer: str, delivery: Delivery, book: AgreementBook) -> Delivery:
    """An alert delivery as ``viewer`` (its recipient) may read it now: as raised, unless a party it names (the
    track's owner or the other side) is no longer bound to ``viewer``; then the alert is withheld (``null``)."""
    alert = delivery.payload.get("alert")
    if not isinstance(alert, dict):
        return delivery
    named = {alert.get("party_id"), alert.get("other_party_id")} - {None, viewer}
    if all(isinstance(p, str) and can_see(viewer, p, book) for p in named):
        return delivery
    return delivery.model_copy(update={"payload": {
        "type": "alert", "alert": None,
        "message": "withheld: no agreement binds you to a party of this alert any more"}})
