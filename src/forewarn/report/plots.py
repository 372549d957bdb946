"""The plots of the daily report (matplotlib, PNG bytes), drawn from the report's tables only.

Figures are drawn on the Agg canvas directly (``FigureCanvasAgg``, no pyplot): no global backend state, no
display needed, safe in a server thread.

Plots are drawn from the report's tables only, so a party's plots show nothing its tables do not. Times on the
plots are hours of the report's UTC day; lead and acknowledgement times are hours and minutes as labelled.
"""

from __future__ import annotations

import io
from datetime import datetime

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from forewarn.report.model import Cell, Report
from forewarn.service.day_view import day_window

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")
LATE = "#c0392b"
IN_TIME = "#2e86c1"


def _colours(report: Report) -> dict[str, str]:
    parties = sorted(set(report.parties) | {str(r["party_id"]) for r in report.tables["volumes"].rows})
    return {p: PALETTE[i % len(PALETTE)] for i, p in enumerate(parties)}


def _figure(height_in: float) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(9.0, max(2.2, height_in)), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.grid(axis="x", alpha=0.3)
    return fig, ax


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#555555")
    ax.set_xticks([])
    ax.set_yticks([])


def activity_plot(report: Report) -> bytes:
    """Operations per region, stacked by party (horizontal bars)."""
    rows = report.tables["activity"].rows
    regions = sorted({str(r["region"]) for r in rows})
    fig, ax = _figure(1.8 + 0.5 * len(regions))
    if not rows:
        _empty(ax, "no notified activity in the day")
        return _png(fig)
    colours = _colours(report)
    left = dict.fromkeys(regions, 0.0)
    for party in sorted({str(r["party_id"]) for r in rows}):
        counts = [float(sum(int(r["operations"] or 0) for r in rows if r["party_id"] == party and r["region"] == g))
                  for g in regions]
        ax.barh(regions, counts, left=[left[g] for g in regions], color=colours.get(party, "#777777"),
                label=report.parties.get(party, party))
        for g, c in zip(regions, counts, strict=True):
            left[g] += c
    ax.invert_yaxis()
    ax.set_xlabel("operations (a route counted where it arrives, an area where most of it lies)")
    ax.set_title(f"Activity by region, {report.day.isoformat()} (UTC)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    parties = len({r["party_id"] for r in rows})
    fig.legend(loc="outside lower center", ncols=min(parties, 3), fontsize="small")
    return _png(fig)


def lead_time_plot(report: Report) -> bytes:
    """Lead time of every notice with one (hours), against the strictest agreed minimum; late ones in red."""
    rows = [r for r in report.tables["notices"].rows if r["lead_time_s"] is not None]
    fig, ax = _figure(1.2 + 0.38 * len(rows))
    if not rows:
        _empty(ax, "no notice with a lead time in the day")
        return _png(fig)
    labels = [f"#{r['notice_id']} {r['operation_id']} ({r['kind']})" for r in rows]
    leads = [float(r["lead_time_s"] or 0.0) / 3600 for r in rows]
    minima = [float(r["min_notice_s"] or 0.0) / 3600 for r in rows]
    ax.barh(labels, leads, color=[LATE if r["late"] else IN_TIME for r in rows])
    ax.scatter(minima, labels, marker="|", s=300, color="black", zorder=3, label="agreed minimum notice")
    for y, r in enumerate(rows):
        if r["first_use_of"]:
            ax.annotate("first use", (leads[y], y), xytext=(4, 0), textcoords="offset points", va="center",
                        fontsize="small", color="#7d3c98")
    ax.invert_yaxis()
    ax.set_xlabel("lead time, hours (operation start minus notice time); red = later than the agreed minimum")
    ax.set_title("Notices: lead time against the agreed minimum")
    ax.legend(loc="lower right", fontsize="small")
    return _png(fig)


def _parse(value: Cell) -> datetime | None:
    return datetime.fromisoformat(str(value)) if value else None


def ack_plot(report: Report) -> bytes:
    """Acknowledgement time of each delivery (minutes after it was created) against its deadline."""
    rows = report.tables["acknowledgements"].rows
    fig, ax = _figure(1.2 + 0.3 * len(rows))
    if not rows:
        _empty(ax, "no delivery in the day")
        return _png(fig)
    labels = [f"#{r['notice_id']} {r['operation_id']} -> {r['recipient']}" for r in rows]
    times: list[float] = []
    colours: list[str] = []
    for r in rows:
        created = _parse(r["created_at"])
        deadline = _parse(r["ack_deadline"])
        limit = (deadline - created).total_seconds() / 60 if created and deadline else 0.0
        if r["ack_time_s"] is not None:
            times.append(float(r["ack_time_s"]) / 60)
            colours.append(IN_TIME if r["acked_in_time"] is not False else LATE)
        else:
            times.append(limit)
            colours.append("#d5d8dc")
    deadlines = []
    for r in rows:
        created, deadline = _parse(r["created_at"]), _parse(r["ack_deadline"])
        deadlines.append((deadline - created).total_seconds() / 60 if created and deadline else float("nan"))
    bars = ax.barh(labels, times, color=colours)
    for bar, r in zip(bars, rows, strict=True):
        if r["ack_time_s"] is None:
            bar.set_hatch("//")
    ax.scatter(deadlines, labels, marker="|", s=200, color="black", zorder=3, label="acknowledgement deadline")
    ax.invert_yaxis()
    ax.set_xlabel("minutes from delivery to acknowledgement\n(grey hatched: not acknowledged; red: after the deadline)")
    ax.set_title("Acknowledgements")
    ax.legend(loc="lower right", fontsize="small")
    return _png(fig)


def timeline_plot(report: Report) -> bytes:
    """The day's operations as bars over UTC hours, coloured by party; notices (triangles) and alerts (x)."""
    volumes = report.tables["volumes"].rows
    ops = list(dict.fromkeys(str(r["operation_id"]) for r in volumes))
    fig, ax = _figure(1.4 + 0.38 * len(ops))
    if not ops:
        _empty(ax, "no operation in the day")
        return _png(fig)
    start, _ = day_window(report.day)
    colours = _colours(report)

    def hours(value: Cell) -> float:
        t = _parse(value)
        return min(24.0, max(-0.5, (t - start).total_seconds() / 3600)) if t else 0.0

    y = {op: i for i, op in enumerate(ops)}
    for r in volumes:
        a, b = hours(r["start"]), hours(r["end"])
        ax.barh(y[str(r["operation_id"])], b - a, left=a, color=colours.get(str(r["party_id"]), "#777777"),
                alpha=0.85, edgecolor="black", linewidth=0.4)
    for r in report.tables["notices"].rows:
        if r["operation_id"] in y:
            ax.scatter([hours(r["at"])], [y[str(r["operation_id"])]], marker="v", color=LATE if r["late"] else "black",
                       zorder=3, s=30)
    for r in report.tables["alerts"].rows:
        if r["operation_id"] in y:
            ax.scatter([hours(r["at"])], [y[str(r["operation_id"])]], marker="x", color="#f39c12", zorder=4, s=40)
    ax.set_yticks(range(len(ops)), ops)
    ax.invert_yaxis()
    ax.set_xlim(-0.8, 24.2)
    ax.set_xticks(range(0, 25, 2))
    ax.set_xlabel(f"hour of {report.day.isoformat()} (UTC); v = notice (red: late; left of 0: the day before), "
                  "x = alert")
    ax.set_title("Timeline of the day's operations")
    handles = [Patch(color=c, label=report.parties.get(p, p))
               for p, c in colours.items() if any(r["party_id"] == p for r in volumes)]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 3) or 1, fontsize="small")
    return _png(fig)


PLOTS = {"timeline": timeline_plot, "activity": activity_plot, "lead_times": lead_time_plot, "acks": ack_plot}
"""Plot name -> function drawing it from a report (PNG bytes)."""

PLOT_TITLES = {"timeline": "Timeline", "activity": "Activity by region", "lead_times": "Lead times of the notices",
               "acks": "Acknowledgement times"}


def plots(report: Report) -> dict[str, bytes]:
    """Every plot of the report as PNG bytes."""
    return {name: draw(report) for name, draw in PLOTS.items()}
