"""Who is owed a delivery for a notice, and what each delivery carries (no I/O).

Every party bound to the notifying party by an agreement that delivers ``all`` notices gets one delivery on
its primary channel; under agreements that deliver only ``affected_or_subscribed`` notices, a party gets one
when the notice affects it (a conflict with its operations or a warning on its protected sites) or meets one
of its subscriptions (area x altitude band x window). A subscription never widens what a party may see: a
party with no agreement with the notifier gets nothing. The payload is built
through :mod:`forewarn.core.policy`; affected parties also get their conflicts and the resolutions proposed for
their operations, and the registrant of a protected site its site warnings, all as the policy shows them
(measured against coarsened volumes where an agreement coarsens the notifying party's envelope; proposals then
recomputed against the coarsened picture when the live ``airspace`` is given, else withheld).

Times: ``created_at`` is the commit time ``now``; the acknowledgement deadline is ``now`` plus the strictest
(shortest) deadline of the agreements binding the two parties; the expected lead time is the operation's
start minus ``now`` and is checked against the strictest (longest) minimum notice.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from forewarn.core.airspace import AgreementBook, Airspace
from forewarn.core.conflicts import Conflict
from forewarn.core.disclosure import (
    conflicts_told,
    is_coarsened,
    meets_subscription,
    shown_start,
    site_warnings_told,
)
from forewarn.core.model import Operation, Party, ProtectedSite, Subscription
from forewarn.core.policy import coarse_overlay, lookup_in, view_conflict, view_operation, view_resolutions
from forewarn.core.records import Delivery, NoticeOutcome, PartyImpact, impact_of
from forewarn.core.resolutions import ResolutionBounds, ResolutionSet, propose
from forewarn.core.sites import SiteWarning


def _subscribers(op: Operation, subscriptions: Sequence[Subscription], book: AgreementBook) -> dict[str, str]:
    """party id -> first subscription id that one of ``op``'s volumes, as that party is shown them, meets (4D, no
    minima). Only parties an agreement binds to the filer: nobody else could be told anything of ``op``."""
    bound = book.bound_parties(op.party_id)
    out: dict[str, str] = {}
    for sub in sorted(subscriptions, key=lambda s: s.id):
        if sub.party_id == op.party_id or sub.party_id in out or sub.party_id not in bound:
            continue
        if meets_subscription(sub, op, book):
            out[sub.party_id] = sub.id
    return out


def _told(viewer: str, outcome: NoticeOutcome, op: Operation, book: AgreementBook, sites: Sequence[ProtectedSite],
          airspace: Airspace | None, bounds: ResolutionBounds | None,
          ) -> tuple[list[Conflict], list[ResolutionSet], list[SiteWarning], PartyImpact | None]:
    """The conflicts, proposals, site warnings and impact ``viewer`` is told of ``outcome`` (see the module
    docstring): decided on ``op`` as ``viewer`` is shown it (:mod:`forewarn.core.disclosure`)."""
    lookup = lookup_in([op], airspace)
    if is_coarsened(viewer, op, book) and airspace is not None:
        found = conflicts_told(viewer, op, airspace, outcome.at)
        warnings = site_warnings_told(viewer, op, sites, book)
        impact: PartyImpact | None = impact_of(viewer, op.id, found, len(warnings),
                                               " with the notifier's coarsened envelope")
        own = {c.b.operation_id: lookup(c.b.operation_id, c.b.version) for c in found}
        b = bounds or ResolutionBounds()
        resolutions = [propose(o, coarse_overlay(viewer, o, airspace, [op], b), outcome.at, b)
                       for op_id, o in own.items()
                       if o is not None and any(c.adjusting_operation == op_id for c in found)]
        return found, resolutions, warnings, impact
    impact = next((i for i in outcome.impacts if i.party_id == viewer), None)
    found = [c for c in outcome.conflicts if c.b.party_id == viewer]
    conflicts = [v for c in found if (v := view_conflict(viewer, c, lookup, book)) is not None]
    own = {c.b.operation_id: lookup(c.b.operation_id, c.b.version) for c in found}
    resolutions = view_resolutions(viewer, outcome.resolutions, own, found, book, outcome.at, airspace, [op], bounds)
    if is_coarsened(viewer, op, book):  # no live picture: the site warnings are still decided as shown
        warnings = site_warnings_told(viewer, op, sites, book)
    else:
        warnings = [w for w in outcome.site_warnings if w.registered_by == viewer]
    return conflicts, resolutions, warnings, impact


def notice_payload(viewer: str, outcome: NoticeOutcome, op: Operation, book: AgreementBook,
                   dump: dict[str, Any] | None = None, airspace: Airspace | None = None,
                   bounds: ResolutionBounds | None = None,
                   sites: Sequence[ProtectedSite] = ()) -> dict[str, Any] | None:
    """What ``viewer`` is told of a notice, or ``None`` if it may see nothing of the operation. ``airspace`` (the
    live picture, without ``op``'s new version) lets conflicts and proposals be decided and measured against a
    coarsened ``op``; without it they are those found, measured against the coarsened volumes, or withheld (see
    :mod:`forewarn.core.policy`). ``sites``: the protected sites (the viewer's own are checked against ``op`` as
    the viewer is shown it)."""
    view = view_operation(viewer, op, book, dump)
    if view is None:
        return None
    conflicts, resolutions, warnings, impact = _told(viewer, outcome, op, book, sites, airspace, bounds)
    return {
        "type": "notice", "kind": outcome.kind, "notice_id": outcome.notice_id, "at": outcome.at.isoformat(),
        "from_party": op.party_id, "operation": view,
        "affected": bool(impact and impact.affected), "message": impact.message if impact else "",
        "conflicts": [c.model_dump(mode="json") for c in conflicts],
        "resolutions": [r.model_dump(mode="json") for r in resolutions],
        "site_warnings": [w.model_dump(mode="json") for w in warnings],
    }


def plan_deliveries(
    outcome: NoticeOutcome, op: Operation, book: AgreementBook, parties: dict[str, Party],
    subscriptions: Sequence[Subscription], now: datetime, airspace: Airspace | None = None,
    bounds: ResolutionBounds | None = None, sites: Sequence[ProtectedSite] = (),
) -> list[Delivery]:
    """The deliveries a committed notice owes (see module docstring); ``airspace``, ``bounds`` and ``sites`` as
    in :func:`notice_payload`."""
    dump = op.model_dump(mode="json")
    payloads: dict[str, dict[str, Any]] = {}
    recipients: dict[str, str] = {}
    for party_id in sorted(book.bound_parties(op.party_id)):
        payload = notice_payload(party_id, outcome, op, book, dump, airspace, bounds, sites)
        if payload is None or party_id not in parties:
            continue
        payloads[party_id] = payload
        if payload["affected"] or any(a.deliver == "all" for a in book.binding(party_id, op.party_id)):
            recipients[party_id] = "agreement"
    for party_id in _subscribers(op, subscriptions, book):
        if party_id in payloads:
            recipients.setdefault(party_id, "subscription")
    out: list[Delivery] = []
    for party_id, reason in recipients.items():
        payload = payloads[party_id]
        binding = book.binding(party_id, op.party_id)
        min_notice = max((a.min_notice_s for a in binding), default=0.0)
        ack_s = min((a.ack_deadline_s for a in binding), default=None)
        lead = (shown_start(party_id, op, book) - now).total_seconds()  # from the start as this party is shown it
        payload.update(lead_time_s=lead, min_notice_s=min_notice, late=lead < min_notice)
        out.append(Delivery(
            id=str(uuid.uuid4()), notice_id=outcome.notice_id, party_id=party_id, reason=reason,
            payload=payload, created_at=now,
            ack_deadline=now + timedelta(seconds=ack_s) if ack_s is not None else None,
            next_attempt_at=now if parties[party_id].webhook_url else None,
            lead_time_s=lead, min_notice_s=min_notice, late=lead < min_notice,
        ))
    return out


# ---------------------------------------------------------------------------------------------------- lead times
# One definition everywhere: a delivery's lead time is the operation's start minus the FIRST send of that notice to
# that party, whichever of the party's deliveries of the notice (the primary or its backup-channel escalation) went
# out first. Until a delivery is first sent, its ``lead_time_s`` is the expected one, measured at its ``created_at``.


def lead_at_first_send(delivery: Delivery, now: datetime, sibling: Delivery | None) -> float | None:
    """The lead time (s) of ``delivery`` when first sent at ``now``: ``sibling`` (its original or its escalation)
    already sent at or before ``now`` was the first send to the party and its lead time stands; else this send is
    the first, ``now`` counted from the delivery's expected lead at ``created_at``. ``None`` if it has none."""
    if delivery.lead_time_s is None:
        return None
    if (sibling is not None and sibling.lead_time_s is not None and sibling.first_sent_at is not None
            and sibling.first_sent_at <= now):
        return sibling.lead_time_s
    return delivery.lead_time_s - (now - delivery.created_at).total_seconds()


def escalation_lead(original: Delivery, now: datetime) -> float | None:
    """The lead time of a backup-channel escalation of ``original`` created at ``now``: the original's own if it
    was sent (the first send to the party), else the expected lead at ``now``."""
    if original.lead_time_s is None or original.first_sent_at is not None:
        return original.lead_time_s
    return original.lead_time_s - (now - original.created_at).total_seconds()


def is_late(lead_time_s: float | None, min_notice_s: float | None) -> bool:
    """Whether a lead time falls short of the agreed minimum notice (no lead time: not late)."""
    return lead_time_s is not None and lead_time_s < (min_notice_s or 0.0)
