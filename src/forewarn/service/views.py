"""Read use cases through the disclosure policy (:mod:`forewarn.core.policy`): what one party may see of the
parties, agreements, operations, protected sites, notice outcomes, the situation and a day's records.

Reading another party's released planning detail is a disclosure: it is recorded in the ledger (``via`` names
the read path, given by the face). Times are timezone-aware UTC; boxes are WGS84 degrees
``(min_lon, min_lat, max_lon, max_lat)``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from forewarn.core.model import Agreement, Operation, OperationState, Party, ProtectedSite
from forewarn.core.policy import can_see, envelope_volumes, view_operation, view_outcome, visible
from forewarn.core.records import NoticeOutcome
from forewarn.errors import NotFound
from forewarn.ledger.keys import PartySignature
from forewarn.service.day_view import Visible, gather
from forewarn.service.reference import ReferenceData
from forewarn.service.situation import situation

Box = tuple[float, float, float, float]
"""``(min_lon, min_lat, max_lon, max_lat)`` in WGS84 degrees."""


def _meets(a: Box, b: Box) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


class Views(ReferenceData):
    """The read use cases (a part of :class:`~forewarn.service.notices.Forewarn`)."""

    def parties_visible_to(self, viewer: str, admin: bool) -> list[Party]:
        """Every party for an admin; otherwise the viewer and the parties an agreement binds it to."""
        book = self.airspace.book
        return [p for p in self.repo.list_parties() if admin or can_see(viewer, p.id, book)]

    def agreements_visible_to(self, viewer: str, admin: bool) -> list[Agreement]:
        """Every agreement for an admin; otherwise those the viewer is party to."""
        return [a for a in self.repo.list_agreements() if admin or viewer in a.parties]

    def operations_visible_to(self, viewer: str, now: datetime, via: str, *,
                              states: list[OperationState] | None = None, party: str | None = None,
                              box: Box | None = None, start: datetime | None = None,
                              end: datetime | None = None) -> list[dict[str, Any]]:
        """The operations ``viewer`` may see, as it may see them, filtered on the volumes as shown to it
        (filtering on exact ones would let bisecting queries find a coarsened envelope's exact bounds): ending
        after ``start``, starting before ``end``, meeting ``box``. Released planning detail is recorded as a
        disclosure at ``now``."""
        book = self.airspace.book
        out: list[dict[str, Any]] = []
        for op in self.repo.list_operations(states, party):
            if not visible(viewer, op, book):
                continue
            shown = envelope_volumes(viewer, op, book)
            if (start and max(v.end for v in shown) <= start) or (end and min(v.start for v in shown) >= end):
                continue
            if box is not None and not any(_meets(v.shape.bounds, box) for v in shown):
                continue
            view = view_operation(viewer, op, book)
            if view is not None:
                out.append(view)
        # planning detail released to another party: a disclosure, recorded in the ledger (aggregated per period)
        self.record_disclosures(viewer, [(v["id"], v) for v in out if "detail" in v and v["party_id"] != viewer],
                                now, via)
        return out

    def operation_visible_to(self, viewer: str, operation_id: str, now: datetime, via: str) -> dict[str, Any]:
        """One operation as ``viewer`` may see it; NotFound if it does not exist or may not be seen. Released
        planning detail is recorded as a disclosure at ``now``."""
        op = self.repo.get_operation(operation_id)
        view = None if op is None else view_operation(viewer, op, self.airspace.book)
        if op is None or view is None:
            raise NotFound(f"no operation {operation_id}")
        if "detail" in view and op.party_id != viewer:
            self.record_disclosure(viewer, operation_id, view, now, via)
        return view

    def outcome_shown_to(self, viewer: str, outcome: NoticeOutcome, op: Operation | None = None) -> NoticeOutcome:
        """The outcome of the viewer's own filing or check (of ``op``; default: the version it stored) as the
        policy shows it to the viewer."""
        if op is None:  # the live picture holds the version just stored (unless it has moved on): no read
            live = self.airspace.operations.get(outcome.operation_id)
            op = live if live is not None and live.version == outcome.version else self.repo.get_operation(
                outcome.operation_id, outcome.version)
        if op is None:  # pragma: no cover - a stored outcome always has its operation version
            raise NotFound(f"no operation {outcome.operation_id}")
        with self.commits.reading():  # the live picture is read for proposals against coarsened volumes
            return view_outcome(viewer, outcome, op, self.airspace.book, self.airspace,
                                self.settings.resolution_bounds(), self.repo.get_operation)

    def situation_seen_by(self, viewer: str | None, planned: bool = False) -> dict[str, Any]:
        """The situation as GeoJSON (RFC 7946, WGS84 lon/lat) as ``viewer`` may see it (None: everything);
        ``planned`` adds the viewer's own planned operations."""
        book = self.airspace.book if viewer is not None else None
        return situation(self.repo, include_planned=planned, viewer=viewer, book=book)

    def sites_visible_to(self, viewer: str) -> list[ProtectedSite]:
        """Protected sites registered by the viewer or by parties an agreement binds it to."""
        book = self.airspace.book
        return [s for s in self.repo.list_sites() if can_see(viewer, s.registered_by, book)]

    def register_own_site(self, site: ProtectedSite, now: datetime,
                          party_signature: PartySignature | None = None) -> None:
        """Register (or update) a site of ``site.registered_by``; NotFound when another party holds its id."""
        existing = self.repo.get_site(site.id)
        if existing is not None and existing.registered_by != site.registered_by:
            raise NotFound(f"no site {site.id} of yours")
        self.register_site(site, now, party_signature=party_signature)

    def day_seen_by(self, day: date, viewer: str | None) -> Visible:
        """What ``viewer`` (None: the operator) may see of the UTC ``day``: the data of its daily report
        (:func:`forewarn.service.day_view.gather`). LookupError for an unknown party."""
        return gather(self.repo, day, viewer)
