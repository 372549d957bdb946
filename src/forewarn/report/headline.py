"""The whole report of one viewer and UTC day: every table (:mod:`forewarn.report.day_tables`) and the headline
figures counted from them, with their readable labels. Durations in seconds (shown as minutes and seconds)."""

from __future__ import annotations

import statistics
from collections import defaultdict

from forewarn.report.day_tables import (
    activity_tables,
    alert_table,
    conflict_table,
    delivery_tables,
    first_uses,
    notice_table,
    notices_of_day,
    operation_table,
    site_warning_table,
)
from forewarn.report.model import Cell, Report, Table
from forewarn.service.day_view import Visible


def build_report(vis: Visible) -> Report:
    """Every table and the headline figures of the report of ``vis`` (see module docstring)."""
    day_notices = notices_of_day(vis)
    activity, volumes = activity_tables(vis)
    operations = operation_table(vis)
    firsts = first_uses(vis)
    notices = notice_table(vis, day_notices, firsts)
    acks, escalations = delivery_tables(vis, day_notices)
    conflicts = conflict_table(vis, day_notices)
    sites = site_warning_table(day_notices)
    alerts = alert_table(vis)
    first = Table("first_use", "First use of an agreement's notification mechanism",
                  ("agreement_id", "party_id", "notice_id", "at", "operation_id", "activity_class",
                   "first_for_agreement", "agreement_first_used"), firsts,
                  "the first notice a party ever filed under an agreement, when it falls in the day; "
                  "first_for_agreement: also the first notice of any party under it (agreement_first_used says "
                  "whose and when)")
    ack_times = [float(r["ack_time_s"]) for r in acks.rows if isinstance(r["ack_time_s"], float | int)]
    by_region: dict[str, int] = defaultdict(int)
    for row in activity.rows:
        by_region[str(row["region"])] += int(row["operations"] or 0)
    summary: dict[str, Cell] = {
        "notices": len(notices.rows),
        "notices_late": sum(1 for r in notices.rows if r["late"]),
        "operations_in_day": len({r["operation_id"] for r in volumes.rows}),
        "conflicts": len(conflicts.rows),
        "conflicts_adjusted": sum(1 for r in conflicts.rows if "amended" in str(r["outcome"])
                                  or "cancelled" in str(r["outcome"])),
        "site_warnings": len(sites.rows),
        "deliveries": len(acks.rows),
        "acknowledged": len(ack_times),
        "acknowledged_in_time": sum(1 for r in acks.rows if r["acked_in_time"] is True),
        "not_acknowledged": sum(1 for r in acks.rows if r["acked_at"] is None),
        "median_ack_time_s": statistics.median(ack_times) if ack_times else None,
        "escalations": len(escalations.rows),
        "alerts": len(alerts.rows),
        "conformance_incidents": sum(1 for r in alerts.rows if r["group"] == "conformance"
                                     and r["kind"] != "conforming"),
        "predicted_conflicts": sum(1 for r in alerts.rows if r["kind"] == "predicted_conflict"),
        "predicted_entries": sum(1 for r in alerts.rows if r["kind"] == "predicted_entry"),
        "first_uses": len(firsts),
    }
    for region, count in sorted(by_region.items()):
        summary[f"operations_in_{region}"] = count
    tables = {t.name: t for t in (activity, operations, volumes, notices, first, acks, escalations, conflicts, sites,
                                  alerts)}
    notes = list(vis.notes)
    if not vis.alerts:
        notes.append("no alert deliveries (conformance, predictions) are recorded for this viewer")
    return Report(day=vis.day, party=vis.viewer, parties=dict(vis.parties), summary=summary, tables=tables,
                  notes=notes)


SUMMARY_LABELS: dict[str, str] = {
    "notices": "notices filed",
    "notices_late": "notices later than the agreed minimum",
    "operations_in_day": "operations active in the day",
    "conflicts": "conflicts found",
    "conflicts_adjusted": "conflicts resolved by an amendment or cancellation",
    "site_warnings": "protected-site warnings",
    "deliveries": "deliveries",
    "acknowledged": "deliveries acknowledged",
    "acknowledged_in_time": "acknowledged within the deadline",
    "not_acknowledged": "deliveries not acknowledged",
    "median_ack_time_s": "median time to acknowledge",
    "escalations": "escalations to a backup channel",
    "alerts": "live-track alerts",
    "conformance_incidents": "conformance incidents",
    "predicted_conflicts": "predicted conflicts (live tracks)",
    "predicted_entries": "predicted entries into another party's volume",
    "first_uses": "first uses of an agreement's mechanism",
}
"""Readable labels of the headline figures (the JSON and CSV keep the keys)."""


def summary_label(key: str) -> str:
    """The readable label of a headline figure (``operations_in_<region>`` included)."""
    if key.startswith("operations_in_") and key not in SUMMARY_LABELS:
        return f"operations in {key.removeprefix('operations_in_')}"
    return SUMMARY_LABELS.get(key, key.replace("_", " "))


def summary_text(key: str, value: Cell) -> str:
    """A headline figure as text: durations (keys ending ``_s``) as minutes and seconds, a missing median as
    'none acknowledged'."""
    if value is None:
        return "none acknowledged" if key == "median_ack_time_s" else "none"
    if key.endswith("_s") and isinstance(value, int | float):
        minutes, seconds = divmod(round(float(value)), 60)
        return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"
    return str(value)
