"""Evaluation of an operation against the live picture: conflicts, protected-site warnings, resolutions for the
sides asked to adjust, lead times per agreement and what each bound party is told (its impact). Also the steps
that change the live picture during a group commit and undo themselves if the COMMIT fails. No I/O: the
caller passes the sites and the bounds it read."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Literal

from forewarn.core.airspace import AgreementBook, Airspace
from forewarn.core.conflicts import Conflict, detect
from forewarn.core.model import Operation, ProtectedSite
from forewarn.core.records import LeadTime, NoticeKind, NoticeOutcome, PartyImpact, impact_of
from forewarn.core.resolutions import ResolutionBounds, ResolutionSet, propose
from forewarn.core.sites import SiteWarning, site_warnings
from forewarn.errors import InvalidInput

Undo = list[Callable[[], None]]
"""Steps that restore the live picture if a group commit's COMMIT fails (run last first)."""


def require_aware(now: datetime) -> None:
    """Refuse a naive ``now``: every use case is given a timezone-aware UTC time."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise InvalidInput("now must be a timezone-aware UTC time")


def evaluate(op: Operation, airspace: Airspace, sites: Iterable[ProtectedSite], bounds: ResolutionBounds,
             now: datetime, kind: NoticeKind | Literal["check"]) -> NoticeOutcome:
    """The outcome of filing ``op`` at ``now`` against the live picture (not yet stored: no notice id)."""
    conflicts = detect(op, airspace, now)
    warnings = site_warnings(op, sites, airspace.book)
    return NoticeOutcome(
        notice_id=None, kind=kind,
        operation_id=op.id, version=op.version, party_id=op.party_id, activity_class=op.activity_class,
        at=now, lead_times=lead_times(op, airspace.book, now), conflicts=conflicts, site_warnings=warnings,
        resolutions=resolutions(op, conflicts, airspace, bounds, now),
        impacts=impacts(op, conflicts, warnings, airspace.book),
    )


def resolutions(op: Operation, conflicts: list[Conflict], airspace: Airspace, bounds: ResolutionBounds,
                now: datetime) -> list[ResolutionSet]:
    """The proposals for every operation asked to adjust: ``op`` itself, and the others with ``op`` in place."""
    adjusting = list(dict.fromkeys(c.adjusting_operation for c in conflicts))
    out: list[ResolutionSet] = []
    if op.id in adjusting:
        out.append(propose(op, airspace, now, bounds))
    others = [a for a in adjusting if a != op.id]
    if others:
        with tentatively(airspace, op):
            for other_id in others:
                out.append(propose(airspace.operations[other_id], airspace, now, bounds))
    return out


def lead_times(op: Operation, book: AgreementBook, now: datetime) -> list[LeadTime]:
    """The notice's lead time under every agreement of the filing party, and whether it is late."""
    lead = (op.start - now).total_seconds()
    return [
        LeadTime(agreement_id=ag.id, lead_time_s=lead, min_notice_s=ag.min_notice_s, late=lead < ag.min_notice_s)
        for ag in book if op.party_id in ag.parties
    ]


def impacts(op: Operation, conflicts: list[Conflict], warnings: list[SiteWarning],
            book: AgreementBook) -> list[PartyImpact]:
    """What each party bound to the filing party is told: affected or not, and who is asked to adjust."""
    return [impact_of(party, op.id, [c for c in conflicts if c.b.party_id == party],
                      sum(1 for w in warnings if w.registered_by == party))
            for party in sorted(book.bound_parties(op.party_id))]


@contextmanager
def tentatively(airspace: Airspace, op: Operation) -> Iterator[None]:
    """Put ``op`` in the live picture for the duration of the block, then restore what was there."""
    previous = airspace.operations.get(op.id)
    airspace.put(op)
    try:
        yield
    finally:
        restore(airspace, op.id, previous)


def put_live(airspace: Airspace, op: Operation, undo: Undo) -> None:
    """Put ``op`` in the live picture now (later filings of the batch must see it); ``undo`` restores what was
    there if the batch's COMMIT fails."""
    previous = airspace.operations.get(op.id)
    airspace.put(op)
    undo.append(lambda: restore(airspace, op.id, previous))


def remove_live(airspace: Airspace, operation_id: str, undo: Undo) -> None:
    """Take an operation out of the live picture now; ``undo`` puts it back if the batch's COMMIT fails."""
    previous = airspace.operations.get(operation_id)
    airspace.remove(operation_id)
    undo.append(lambda: restore(airspace, operation_id, previous))


def restore(airspace: Airspace, operation_id: str, previous: Operation | None) -> None:
    """Put back what the live picture held for ``operation_id`` (nothing, or ``previous``)."""
    airspace.remove(operation_id)
    if previous is not None:
        airspace.put(previous)
