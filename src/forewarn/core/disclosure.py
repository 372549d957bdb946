"""What a party is *told* about another party's operation, decided on what it is *shown* of it (no I/O).

:mod:`forewarn.core.policy` decides what a party is shown of an operation: where an agreement coarsens the
owner's envelope for it, the coarsened volumes (:func:`~forewarn.core.policy.envelope_volumes`). Every answer
that party gets about the operation is decided on those same volumes, never on the exact ones:

* the protected-site warnings on its own sites (:func:`site_warnings_told`): a site is warned about when its
  buffer meets the coarsened footprint;
* the conflicts with its own operations, whether it is affected at all, and the proposals for its operations
  (:func:`conflicts_told`, :func:`~forewarn.core.records.impact_of`);
* whether one of its subscriptions meets the operation (:func:`meets_subscription`);
* the lead time it is given (:func:`shown_start`: the coarsened start, never later than the exact one).

The coarsened volumes contain the exact ones (everything rounds outward), so a coarsened party is warned at least
whenever it would be on the exact shape: over-warning is the safe side. Two operations with the same coarsened
view therefore give that party exactly the same answers, whatever probe sites, subscriptions or operations it
holds. The owner itself, and parties for whom no agreement coarsens the owner, are told what the exact volumes
give. There is no per-agreement override: safety warnings never see through a coarsening (docs/security.md).

Units as everywhere: metres above the WGS84 ellipsoid, metres, seconds, UTC, WGS84 lon/lat degrees.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from forewarn.core.airspace import AgreementBook, Airspace
from forewarn.core.conflicts import Conflict, detect, volumes_conflict
from forewarn.core.model import ZERO_MINIMA, Operation, ProtectedSite, Subscription
from forewarn.core.policy import coarsening_for, envelope_volumes
from forewarn.core.sites import SiteWarning, site_warnings


def shown_operation(viewer: str, op: Operation, book: AgreementBook) -> Operation:
    """``op`` with the volumes ``viewer`` is shown (itself when nothing is coarsened for ``viewer``)."""
    if coarsening_for(viewer, op.party_id, book) is None:
        return op
    return op.model_copy(update={"volumes": envelope_volumes(viewer, op, book)})


def is_coarsened(viewer: str, op: Operation, book: AgreementBook) -> bool:
    """Whether ``viewer`` is shown ``op`` coarsened."""
    return coarsening_for(viewer, op.party_id, book) is not None


def site_warnings_told(viewer: str, op: Operation, sites: Iterable[ProtectedSite],
                       book: AgreementBook) -> list[SiteWarning]:
    """The warnings ``viewer`` gets on its own protected sites about ``op``, decided on the volumes it is shown
    (distances geodesic from the shown footprint to the site, metres)."""
    mine = [s for s in sites if s.registered_by == viewer]
    if not mine:
        return []
    return site_warnings(shown_operation(viewer, op, book), mine, book)


def conflicts_told(viewer: str, op: Operation, airspace: Airspace, now: datetime | None) -> list[Conflict]:
    """The conflicts of ``op`` (side ``a``) with ``viewer``'s live operations (side ``b``), detected between the
    volumes of ``op`` as ``viewer`` is shown them and ``viewer``'s own exact volumes; figures measured the same
    way. ``airspace`` is the live picture (``op``'s own entry, an earlier version, is ignored)."""
    shown = shown_operation(viewer, op, airspace.book)
    return [c for c in detect(shown, airspace, now) if c.b.party_id == viewer]


def meets_subscription(sub: Subscription, op: Operation, book: AgreementBook) -> bool:
    """Whether ``op``, as the subscriber is shown it, meets the subscription (4D, no minima)."""
    return any(volumes_conflict(sub.volume, v, v.shape, ZERO_MINIMA) for v in envelope_volumes(sub.party_id, op, book))


def shown_start(viewer: str, op: Operation, book: AgreementBook) -> datetime:
    """The earliest start of ``op``'s volumes as ``viewer`` is shown them (UTC; the coarsened start is never later
    than the exact one, so a lead time measured from it is never longer)."""
    return min(v.start for v in envelope_volumes(viewer, op, book))
