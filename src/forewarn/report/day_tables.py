"""The tables of the daily report, one function per table, computed from a
:class:`~forewarn.service.day_view.Visible` and nothing else.

Units: times are ISO 8601 UTC strings, durations seconds, distances and altitudes metres (altitudes above the
WGS84 ellipsoid). What belongs to the day (UTC calendar day ``[00:00Z, 24:00Z)``):

* activity and volumes: notified, not cancelled operations (latest version) with a volume whose window meets
  the day; each volume is counted in one region (:func:`forewarn.report.regions.volume_region`: coarse
  built-in polygons; a route where it arrives, an area where most of it lies);
* notices: those filed during the day, and those whose notified volumes meet the day (a notice filed the
  evening before for the day's activity belongs to the day's report);
* deliveries, acknowledgements and escalations: those of the day's notices (and any without a notice
  created during the day); conflicts and protected-site warnings: those found by the day's notices;
* alerts: those whose ``at`` falls in the day;
* first use: for each agreement and party, the first notice ever that party filed under the agreement (as far
  as the viewer can see), flagged when it falls in the day; ``first_for_agreement`` when it is also the
  first notice anybody filed under it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, datetime

from forewarn.report.model import Cell, Table
from forewarn.report.regions import regions_crossed, volume_region
from forewarn.service.day_view import NoticeView, Visible, day_window, overlaps_day

CONFORMANCE_KINDS = frozenset({"nonconforming", "conforming", "intrusion"})
PREDICTION_KINDS = frozenset({"predicted_conflict", "predicted_entry"})


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _in_day(value: datetime | None, day: date) -> bool:
    start, end = day_window(day)
    return value is not None and start <= value < end


def notices_of_day(vis: Visible) -> list[NoticeView]:
    """The notices that belong to the day (see module docstring), oldest first."""
    return [n for n in vis.notices if _in_day(n.at, vis.day) or overlaps_day(n.volumes, vis.day)]


def activity_tables(vis: Visible) -> tuple[Table, Table]:
    """Activity per party x activity class x region, and the day's volumes with their regions."""
    groups: dict[tuple[str, str, str], tuple[set[str], int]] = {}
    volume_rows: list[dict[str, Cell]] = []
    start, end = day_window(vis.day)
    for op in sorted(vis.operations.values(), key=lambda o: (o.party_id, o.id)):
        if op.notified_at is None or op.state in ("planned", "cancelled"):
            continue
        for i, v in enumerate(op.volumes):
            if not (v.start < end and v.end > start):
                continue
            region = volume_region(v)
            ops, count = groups.get((op.party_id, op.activity_class, region), (set(), 0))
            groups[(op.party_id, op.activity_class, region)] = (ops | {op.id}, count + 1)
            volume_rows.append({
                "operation_id": op.id, "party_id": op.party_id, "activity_class": op.activity_class,
                "state": op.state, "version": op.version, "volume_index": i, "footprint": v.footprint.kind,
                "lower_m": round(v.lower_m, 1), "upper_m": round(v.upper_m, 1), "start": _iso(v.start),
                "end": _iso(v.end), "region": region, "regions_crossed": "; ".join(regions_crossed(v.shape)),
            })
    rows: list[dict[str, Cell]] = [
        {"party_id": p, "party": vis.parties.get(p, p), "activity_class": c, "region": r,
         "operations": len(ops), "volumes": n}
        for (p, c, r), (ops, n) in sorted(groups.items())
    ]
    activity = Table("activity", "Activity per party, activity class and region",
                     ("party_id", "party", "activity_class", "region", "operations", "volumes"), rows,
                     "notified, not cancelled operations with a volume in the day; each volume counted in one region: "
                     "a route (corridor) where it arrives, an area where most of it lies (coarse built-in regions)")
    volumes = Table("volumes", "Volumes of the day and their regions",
                    ("operation_id", "party_id", "activity_class", "state", "version", "volume_index", "footprint",
                     "lower_m", "upper_m", "start", "end", "region", "regions_crossed"), volume_rows,
                    "altitudes metres above WGS84; regions crossed largest share first")
    return activity, volumes


DETAIL_FIELDS = ("purpose", "unit", "call_signs", "notes")
"""Planning-detail fields: shown only where the viewer owns the operation or an agreement released them."""


def operation_table(vis: Visible) -> Table:
    """The day's operations as the viewer may see them, with the planning detail released to it."""
    rows: list[dict[str, Cell]] = []
    for op in sorted(vis.operations.values(), key=lambda o: (o.party_id, o.id)):
        if not overlaps_day(op.volumes, vis.day) or (op.notified_at is None and not op.own):
            continue
        row: dict[str, Cell] = {
            "operation_id": op.id, "party_id": op.party_id, "activity_class": op.activity_class, "state": op.state,
            "version": op.version, "notified_at": _iso(op.notified_at), "start": _iso(min(v.start for v in op.volumes)),
            "end": _iso(max(v.end for v in op.volumes)), "volumes": len(op.volumes),
        }
        for name in DETAIL_FIELDS:
            value = op.detail.get(name)
            row[name] = "; ".join(str(v) for v in value) if isinstance(value, list) else value
        rows.append(row)
    return Table("operations", "Operations of the day (as this viewer may see them)",
                 ("operation_id", "party_id", "activity_class", "state", "version", "notified_at", "start", "end",
                  "volumes", *DETAIL_FIELDS), rows,
                 "other parties' operations show their safety envelope and only the planning detail an agreement "
                 "releases to this viewer; planned operations are private to their party")


def first_uses(vis: Visible) -> list[dict[str, Cell]]:
    """First notice of each party under each agreement (as far as the viewer sees), flagged in the day."""
    first: dict[tuple[str, str], NoticeView] = {}
    first_any: dict[str, NoticeView] = {}
    for n in sorted(vis.notices, key=lambda n: (n.at, n.id)):
        for lt in n.lead_times:
            first.setdefault((lt.agreement_id, n.party_id), n)
            first_any.setdefault(lt.agreement_id, n)
    rows: list[dict[str, Cell]] = []
    for (agreement_id, party_id), n in sorted(first.items(), key=lambda kv: (kv[1].at, kv[0])):
        if _in_day(n.at, vis.day):
            opener = first_any[agreement_id]
            rows.append({"agreement_id": agreement_id, "party_id": party_id, "notice_id": n.id, "at": _iso(n.at),
                         "operation_id": n.operation_id, "activity_class": n.activity_class,
                         "first_for_agreement": opener.id == n.id,
                         "agreement_first_used": f"{opener.party_id} at {_iso(opener.at)}"})
    return rows


def notice_table(vis: Visible, day_notices: list[NoticeView], firsts: list[dict[str, Cell]]) -> Table:
    """Notices with their lead time against the strictest agreed minimum (late marked) and first use."""
    first_by_notice: dict[int, list[str]] = defaultdict(list)
    for row in firsts:
        first_by_notice[int(row["notice_id"] or 0)].append(str(row["agreement_id"]))
    rows: list[dict[str, Cell]] = []
    for n in day_notices:
        lead = n.lead_times[0].lead_time_s if n.lead_times else (
            (min(v.start for v in n.volumes) - n.at).total_seconds() if n.volumes and n.kind in ("notify", "amend")
            else None)
        minimum = max((lt.min_notice_s for lt in n.lead_times), default=None)
        rows.append({
            "notice_id": n.id, "at": _iso(n.at), "party_id": n.party_id, "operation_id": n.operation_id,
            "version": n.version, "kind": n.kind, "activity_class": n.activity_class,
            "lead_time_s": lead, "min_notice_s": minimum, "late": any(lt.late for lt in n.lead_times),
            "late_under": "; ".join(lt.agreement_id for lt in n.lead_times if lt.late),
            "agreements": "; ".join(lt.agreement_id for lt in n.lead_times),
            "conflicts": len(n.conflicts), "site_warnings": len(n.site_warnings),
            "first_use_of": "; ".join(first_by_notice.get(n.id, [])), "source": n.source,
        })
    return Table("notices", "Notices and their lead times",
                 ("notice_id", "at", "party_id", "operation_id", "version", "kind", "activity_class", "lead_time_s",
                  "min_notice_s", "late", "late_under", "agreements", "conflicts", "site_warnings", "first_use_of",
                  "source"), rows,
                 "lead time = operation start minus notice time (s), against the strictest minimum notice of the "
                 "agreements it was filed under; first_use_of: agreements whose mechanism the party used for the "
                 "first time")


def delivery_tables(vis: Visible, day_notices: list[NoticeView]) -> tuple[Table, Table]:
    """Acknowledgement times of the day's deliveries, and their escalations over the backup channel."""
    by_id = {n.id: n for n in day_notices}
    ack_rows: list[dict[str, Cell]] = []
    esc_rows: list[dict[str, Cell]] = []
    backups = {d.escalation_of: d for d in vis.deliveries if d.escalation_of}
    for d in vis.deliveries:
        notice = by_id.get(d.notice_id) if d.notice_id is not None else None
        if notice is None and not (d.notice_id is None and _in_day(d.created_at, vis.day)):
            continue
        if d.payload.get("type") == "alert" or d.channel != "primary":
            continue
        ack_s = (d.acked_at - d.created_at).total_seconds() if d.acked_at else None
        site = d.payload.get("site")
        subject = notice.operation_id if notice else (
            f"site {site.get('id')}" if isinstance(site, dict) and site.get("id") else None)
        ack_rows.append({
            "delivery_id": d.id, "seq": d.seq, "notice_id": d.notice_id, "recipient": d.party_id,
            "type": str(d.payload.get("type", "")) or None,
            "from_party": notice.party_id if notice else d.payload.get("from_party"),
            "operation_id": subject, "reason": d.reason,
            "created_at": _iso(d.created_at), "delivered_at": _iso(d.delivered_at),
            "ack_deadline": _iso(d.ack_deadline), "acked_at": _iso(d.acked_at), "ack_time_s": ack_s,
            "acked_in_time": (d.acked_at <= d.ack_deadline) if d.acked_at and d.ack_deadline else None,
            "escalated_at": _iso(d.escalated_at), "late_notice": d.late,
        })
        if d.escalated_at is not None:
            backup = backups.get(d.id)
            esc_rows.append({
                "delivery_id": d.id, "notice_id": d.notice_id, "recipient": d.party_id,
                "operation_id": notice.operation_id if notice else None, "ack_deadline": _iso(d.ack_deadline),
                "escalated_at": _iso(d.escalated_at), "backup_delivery_id": backup.id if backup else None,
                "acked_at": _iso(d.acked_at),
                "acked_after_escalation_s": (d.acked_at - d.escalated_at).total_seconds() if d.acked_at else None,
            })
    acks = Table("acknowledgements", "Deliveries and acknowledgement times",
                 ("delivery_id", "seq", "notice_id", "recipient", "type", "from_party", "operation_id", "reason",
                  "created_at",
                  "delivered_at", "ack_deadline", "acked_at", "ack_time_s", "acked_in_time", "escalated_at",
                  "late_notice"), ack_rows,
                 "primary-channel deliveries (notices, and protected-site registrations: operation_id names the "
                 "site); ack_time_s = acknowledgement minus delivery creation (s); an "
                 "acknowledgement means received and understood, never approval")
    escalations = Table("escalations", "Escalations (acknowledgement deadline passed)",
                        ("delivery_id", "notice_id", "recipient", "operation_id", "ack_deadline", "escalated_at",
                         "backup_delivery_id", "acked_at", "acked_after_escalation_s"), esc_rows,
                        "each escalation re-sent the delivery over the recipient's backup channel")
    return acks, escalations


def _adjustment_outcome(vis: Visible, notice: NoticeView, adjusting: str, version: int, holding: str) -> str:
    op = vis.operations.get(adjusting)
    if op is None:
        return "unknown (not visible)"
    if op.state == "cancelled":
        return f"{adjusting} cancelled"
    if op.version > version:
        later = [n for n in vis.notices if n.operation_id == adjusting and n.kind == "amend" and n.at >= notice.at
                 and n.id != notice.id]
        if later:
            amend = later[0]
            still = any({c.a.operation_id, c.b.operation_id} == {adjusting, holding} for c in amend.conflicts)
            return (f"{adjusting} amended to v{amend.version} (notice {amend.id}): "
                    + ("still in conflict" if still else "conflict cleared"))
        return f"{adjusting} amended to v{op.version}"
    return f"not adjusted ({adjusting} {op.state})"


def conflict_table(vis: Visible, day_notices: list[NoticeView]) -> Table:
    """Conflicts found by the day's notices, the proposals made and what became of the side asked to adjust."""
    rows: list[dict[str, Cell]] = []
    seen: set[tuple[str, int, int, str, int, int]] = set()
    for n in day_notices:
        proposals = {r.operation_id: r for r in n.resolutions}
        for c in n.conflicts:
            key = (c.a.operation_id, c.a.version, c.a.volume_index, c.b.operation_id, c.b.version, c.b.volume_index)
            if key in seen:
                continue
            seen.add(key)
            side = c.a if c.a.operation_id == c.adjusting_operation else c.b
            proposal = proposals.get(c.adjusting_operation)
            if proposal is not None:
                text = "; ".join(o.description for o in proposal.options) or "none found within bounds"
            else:
                text = "(proposed to the operation's owner)"
            rows.append({
                "notice_id": n.id, "detected_at": _iso(n.at), "agreement_id": c.agreement_id,
                "operation_a": c.a.operation_id, "party_a": c.a.party_id, "class_a": c.a.activity_class,
                "operation_b": c.b.operation_id, "party_b": c.b.party_id, "class_b": c.b.activity_class,
                "overlap_km2": round(c.overlap.area_km2, 3), "time_overlap_s": c.overlap.time_overlap_s,
                "adjusting_operation": c.adjusting_operation, "holding_operation": c.holding_operation,
                "priority": c.priority_reason, "proposals": text,
                "outcome": _adjustment_outcome(vis, n, c.adjusting_operation, side.version, c.holding_operation),
            })
    return Table("conflicts", "Conflicts found and how they were resolved",
                 ("notice_id", "detected_at", "agreement_id", "operation_a", "party_a", "class_a", "operation_b",
                  "party_b", "class_b", "overlap_km2", "time_overlap_s", "adjusting_operation", "holding_operation",
                  "priority", "proposals", "outcome"), rows,
                 "a = the notified operation, b = the one it met; proposals are the least changes that clear every "
                 "conflict of the side asked to adjust (verified by re-running detection)")


def site_warning_table(day_notices: list[NoticeView]) -> Table:
    """Protected-site warnings raised by the day's notices."""
    rows: list[dict[str, Cell]] = [
        {"notice_id": n.id, "at": _iso(n.at), "site_id": w.site_id, "site_name": w.site_name,
         "category": w.category, "registered_by": w.registered_by, "operation_id": w.operation_id,
         "version": w.version, "volume_index": w.volume_index, "party_id": w.party_id,
         "distance_m": round(w.distance_m, 1), "buffer_m": w.buffer_m}
        for n in day_notices for w in n.site_warnings
    ]
    return Table("site_warnings", "Protected-site warnings",
                 ("notice_id", "at", "site_id", "site_name", "category", "registered_by", "operation_id", "version",
                  "volume_index", "party_id", "distance_m", "buffer_m"), rows,
                 "a strike-class volume within a site's buffer; distance geodesic (m), 0 = inside")


def alert_table(vis: Visible) -> Table:
    """Conformance incidents and predicted conflicts (alert deliveries) of the day."""
    rows: list[dict[str, Cell]] = []
    for a in vis.alerts:
        if not _in_day(a.at, vis.day):
            continue
        group = ("conformance" if a.kind in CONFORMANCE_KINDS else "prediction" if a.kind in PREDICTION_KINDS
                 else a.kind)
        extra = {k: v for k, v in a.fields.items()
                 if k not in ("kind", "at", "track_id", "party_id", "operation_id", "message") and v is not None}
        message = a.fields.get("message")
        rows.append({"at": _iso(a.at), "kind": a.kind, "group": group, "track_id": a.track_id,
                     "party_id": a.party_id, "operation_id": a.operation_id, "recipients": "; ".join(a.recipients),
                     "message": str(message) if message is not None else None,
                     "details": json.dumps(extra, sort_keys=True, default=str) if extra else ""})
    return Table("alerts", "Conformance incidents and predicted conflicts",
                 ("at", "kind", "group", "track_id", "party_id", "operation_id", "recipients", "message", "details"),
                 rows,
                 "from alert deliveries; an alert sent to several parties is one row")
