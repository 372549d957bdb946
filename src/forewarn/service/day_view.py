"""What a report may be computed from: the records one viewer may see, gathered once from the store.

Every table and plot of a report is computed from a :class:`Visible` and nothing else, so a party's report
cannot draw on data the party may not see. :func:`gather` builds it:

* **operator** (``viewer`` None, the admin's report): every party, agreement, operation, notice and delivery.
* **party P**: its agreements and the names of the parties they bind it to; its own operations in full; the
  outcomes of its own notices as :func:`forewarn.core.policy.view_outcome` shows a filer (conflicts measured as P
  may see the other side, proposals only for P's operation); other parties' operations only as
  :func:`forewarn.core.policy.view_operation` shows them to P (envelope, possibly coarsened; released detail),
  and only once notified; other parties' notices only through the deliveries P received, read through
  :func:`forewarn.core.policy.view_delivery` (what the agreements no longer allow is withheld again). For P's own
  notices it also sees the delivery record of each recipient -- who was sent it, when, acknowledged when,
  escalated when -- without the recipient's payload (which may hold the recipient's own conflicts and
  resolutions): whether a notice was received and acknowledged is part of the notifier's record.

Times are timezone-aware UTC; the report's day is the UTC calendar day ``[day 00:00Z, day+1 00:00Z)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from pydantic import ValidationError

from forewarn.core.airspace import AgreementBook
from forewarn.core.conflicts import Conflict
from forewarn.core.model import Agreement, Operation, OperationState
from forewarn.core.policy import view_delivery, view_operation, view_outcome
from forewarn.core.records import Delivery, LeadTime
from forewarn.core.resolutions import ResolutionSet
from forewarn.core.sites import SiteWarning
from forewarn.geo.volume import Volume4D
from forewarn.store.repository import Repository

ALERT_KINDS = ("nonconforming", "conforming", "intrusion", "predicted_conflict", "predicted_entry", "cleared")
"""Kinds of alert deliveries (payload ``{"type": "alert", "alert": {"kind": ...}}``) the report knows."""


def day_window(day: date) -> tuple[datetime, datetime]:
    """The UTC calendar day as a half-open window ``[start, end)``."""
    start = datetime.combine(day, time(0, 0), tzinfo=UTC)
    return start, start + timedelta(days=1)


def overlaps_day(volumes: list[Volume4D], day: date) -> bool:
    """Whether any volume's window ``[start, end)`` meets the day."""
    start, end = day_window(day)
    return any(v.start < end and v.end > start for v in volumes)


@dataclass(frozen=True)
class OpView:
    """An operation as the viewer may see it: the safety envelope, plus the planning detail released to it
    (all of it for its own operations). ``own`` tells whether the viewer owns it (always True for the
    operator)."""

    id: str
    party_id: str
    activity_class: str
    state: str
    version: int
    notified_at: datetime | None
    volumes: list[Volume4D]
    detail: dict[str, Any]
    own: bool


@dataclass(frozen=True)
class NoticeView:
    """A notice as the viewer may see it. ``source``: ``own`` (the viewer filed it, or the operator's view),
    ``received`` (known only from a delivery the viewer got). ``volumes`` are those of the version notified."""

    id: int
    at: datetime
    kind: str
    operation_id: str
    version: int
    party_id: str
    activity_class: str
    volumes: list[Volume4D]
    lead_times: list[LeadTime]
    conflicts: list[Conflict]
    site_warnings: list[SiteWarning]
    resolutions: list[ResolutionSet]
    source: Literal["own", "received"]


@dataclass(frozen=True)
class AlertView:
    """One alert (conformance or prediction) as delivered; ``recipients`` are the parties it went to that the
    viewer may know of."""

    kind: str
    at: datetime | None
    track_id: str | None
    party_id: str | None
    operation_id: str | None
    fields: dict[str, Any]
    recipients: list[str]


@dataclass
class Visible:
    """Everything one report may use (see module docstring)."""

    viewer: str | None
    day: date
    parties: dict[str, str]
    agreements: list[Agreement]
    operations: dict[str, OpView]
    notices: list[NoticeView]
    deliveries: list[Delivery]
    alerts: list[AlertView]
    notes: list[str] = field(default_factory=list)


def _all_deliveries(repo: Repository, party_id: str | None) -> Iterator[Delivery]:
    after = 0
    while True:
        batch = repo.list_deliveries(party_id, after_seq=after, limit=1000)
        yield from batch
        if len(batch) < 1000:
            return
        after = batch[-1].seq


def _op_view(op: Operation, own: bool, view: dict[str, Any] | None = None) -> OpView:
    if view is None:
        return OpView(id=op.id, party_id=op.party_id, activity_class=op.activity_class, state=op.state.value,
                      version=op.version, notified_at=op.notified_at, volumes=list(op.volumes),
                      detail=op.detail.model_dump(mode="json"), own=own)
    notified = view.get("notified_at")
    return OpView(id=view["id"], party_id=view["party_id"], activity_class=view["activity_class"],
                  state=view["state"], version=int(view["version"]),
                  notified_at=datetime.fromisoformat(notified) if notified else None,
                  volumes=[Volume4D.model_validate(v) for v in view["volumes"]],
                  detail=dict(view.get("detail") or {}), own=own)


def _parse_alert(payload: dict[str, Any]) -> dict[str, Any] | None:
    alert = payload.get("alert")
    if payload.get("type") != "alert" or not isinstance(alert, dict) or not isinstance(alert.get("kind"), str):
        return None
    return alert


def _alerts(deliveries: list[Delivery]) -> list[AlertView]:
    """Alerts from alert deliveries, one per distinct alert (an alert sent to several parties is one row)."""
    import json

    grouped: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for d in deliveries:
        alert = _parse_alert(d.payload)
        if alert is None or d.channel != "primary":
            continue
        key = str(alert["id"]) if alert.get("id") else json.dumps(alert, sort_keys=True, default=str)
        grouped.setdefault(key, (alert, []))[1].append(d.party_id)
    out: list[AlertView] = []
    for alert, recipients in grouped.values():
        at_raw = alert.get("at")
        try:
            at = datetime.fromisoformat(str(at_raw).replace("Z", "+00:00")) if at_raw else None
        except ValueError:
            at = None
        if at is not None and at.tzinfo is None:
            at = at.replace(tzinfo=UTC)

        def text(name: str, alert: dict[str, Any] = alert) -> str | None:
            value = alert.get(name)
            return str(value) if value is not None else None

        out.append(AlertView(kind=str(alert["kind"]), at=at.astimezone(UTC) if at else None,
                             track_id=text("track_id"), party_id=text("party_id"),
                             operation_id=text("operation_id"), fields=dict(alert),
                             recipients=sorted(set(recipients))))
    return sorted(out, key=lambda a: (a.at or datetime.min.replace(tzinfo=UTC), a.kind, a.track_id or ""))


def _received_notice(d: Delivery, viewer: str, book: AgreementBook) -> NoticeView | None:
    """A notice known only from a delivery: its payload was built through the policy for ``viewer``."""
    p = d.payload
    if p.get("type") != "notice" or d.notice_id is None or not isinstance(p.get("operation"), dict):
        return None
    try:
        op = p["operation"]
        volumes = [Volume4D.model_validate(v) for v in op.get("volumes", [])]
        conflicts = [Conflict.model_validate(c) for c in p.get("conflicts", [])]
        warnings = [SiteWarning.model_validate(w) for w in p.get("site_warnings", [])]
        resolutions = [ResolutionSet.model_validate(r) for r in p.get("resolutions", [])]
        at = datetime.fromisoformat(str(p["at"]))
    except (ValidationError, KeyError, ValueError, TypeError):
        return None
    lead = p.get("lead_time_s")
    lead_times = []
    if lead is not None and p.get("kind") in ("notify", "amend"):
        lead_times = [LeadTime(agreement_id=a.id, lead_time_s=float(lead), min_notice_s=a.min_notice_s,
                               late=float(lead) < a.min_notice_s)
                      for a in book.binding(viewer, str(p.get("from_party")))]
    return NoticeView(id=d.notice_id, at=at.astimezone(UTC), kind=str(p.get("kind")), operation_id=str(op["id"]),
                      version=int(op.get("version", 1)), party_id=str(p.get("from_party")),
                      activity_class=str(op.get("activity_class")), volumes=volumes, lead_times=lead_times,
                      conflicts=conflicts, site_warnings=warnings, resolutions=resolutions, source="received")


def gather(repo: Repository, day: date, viewer: str | None = None) -> Visible:
    """The records a report for ``day`` may use: the operator's (``viewer`` None) or party ``viewer``'s."""
    all_agreements = repo.list_agreements()
    names = {p.id: p.name for p in repo.list_parties()}
    versions: dict[tuple[str, int], list[Volume4D]] = {}

    def notice_volumes(operation_id: str, version: int) -> list[Volume4D]:
        key = (operation_id, version)
        if key not in versions:
            op = repo.get_operation(operation_id, version)
            versions[key] = list(op.volumes) if op is not None else []
        return versions[key]

    if viewer is None:
        ops = {op.id: _op_view(op, True) for op in repo.list_operations()}
        everything = [
            NoticeView(id=n.id, at=n.at, kind=n.kind, operation_id=n.operation_id, version=n.version,
                       party_id=n.party_id, activity_class=n.outcome.activity_class,
                       volumes=notice_volumes(n.operation_id, n.version), lead_times=list(n.outcome.lead_times),
                       conflicts=list(n.outcome.conflicts), site_warnings=list(n.outcome.site_warnings),
                       resolutions=list(n.outcome.resolutions), source="own")
            for n in repo.list_notices()
        ]
        deliveries = list(_all_deliveries(repo, None))
        return Visible(viewer=None, day=day, parties=names, agreements=all_agreements, operations=ops,
                       notices=everything, deliveries=deliveries, alerts=_alerts(deliveries))

    if viewer not in names:
        raise LookupError(f"no party {viewer}")
    agreements = [a for a in all_agreements if viewer in a.parties]
    # (an AgreementBook without agreements is never queried: a party bound by none sees nothing of others)
    book = AgreementBook(agreements)
    known = {viewer} | book.bound_parties(viewer)
    ops = {}
    for op in repo.list_operations(party_id=viewer):
        ops[op.id] = _op_view(op, True)
    for op in repo.list_operations() if agreements else []:
        if op.party_id == viewer or op.state == OperationState.PLANNED or op.notified_at is None:
            continue
        view = view_operation(viewer, op, book)
        if view is not None:
            ops[op.id] = _op_view(op, False, view)
    notices: list[NoticeView] = []
    for n in repo.list_notices():
        if n.party_id != viewer:
            continue
        filed = repo.get_operation(n.operation_id, n.version)
        if filed is None:
            continue
        # shown as the policy shows a filer its own outcome: conflicts measured as it may see the other side,
        # proposals only for its own operation
        o = view_outcome(viewer, n.outcome, filed, book, fallback=repo.get_operation) if agreements else n.outcome
        notices.append(NoticeView(
            id=n.id, at=n.at, kind=n.kind, operation_id=n.operation_id, version=n.version, party_id=n.party_id,
            activity_class=o.activity_class, volumes=list(filed.volumes), lead_times=list(o.lead_times),
            conflicts=list(o.conflicts), site_warnings=list(o.site_warnings),
            resolutions=[r for r in o.resolutions if r.operation_id == n.operation_id], source="own"))
    mine = [shown for d in _all_deliveries(repo, viewer) if (shown := view_delivery(viewer, d, book)) is not None]
    seen = {n.id for n in notices}
    for d in mine if agreements else []:
        received = _received_notice(d, viewer, book)
        if received is not None and received.id not in seen:
            notices.append(received)
            seen.add(received.id)
    own_notice_ids = {n.id for n in notices if n.source == "own"}
    to_others = [d.model_copy(update={"payload": {}}) for d in _all_deliveries(repo, None)
                 if d.notice_id in own_notice_ids and d.party_id != viewer]
    notices.sort(key=lambda n: (n.at, n.id))
    deliveries = sorted(mine + to_others, key=lambda d: d.seq)
    return Visible(viewer=viewer, day=day, parties={p: n for p, n in names.items() if p in known},
                   agreements=agreements, operations=ops, notices=notices, deliveries=deliveries,
                   alerts=_alerts(mine))
