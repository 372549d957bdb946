"""The report as one self-contained HTML page with its plots, rendered from the Jinja2 template
``report/templates/report.html.j2`` with autoescape: every value of the report (party, operation and site names
and ids, notes) is untrusted text and is escaped; the plots (:mod:`forewarn.report.plots`) are embedded as PNG
``data:`` URLs. The page loads nothing from anywhere: inline CSS, no scripts. Altitudes in metres above the
WGS84 ellipsoid, times UTC, durations seconds (headline durations in minutes and seconds).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from forewarn.report.headline import summary_label, summary_text
from forewarn.report.model import Cell, Report, Table
from forewarn.report.plots import PLOT_TITLES, plots

TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass(frozen=True)
class TableView:
    """A table as the page shows it: title, note, columns, and per row its CSS class ('late', 'first' or '')
    and its cells as text."""

    title: str
    note: str
    columns: tuple[str, ...]
    rows: list[tuple[str, list[str]]]


@dataclass(frozen=True)
class Image:
    """An embedded plot: its name, heading and PNG as base64."""

    name: str
    title: str
    base64: str


def cell_text(value: Cell) -> str:
    """A table cell as text: empty for None, yes/no for booleans, floats to one decimal with thousands
    separators (``1,234.5``), anything else as given."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return str(value)


def _row_class(row: dict[str, Cell]) -> str:
    """'late' for a late notice or an acknowledgement after its deadline, 'first' for a first use, else ''."""
    if row.get("late") is True or row.get("acked_in_time") is False:
        return "late"
    return "first" if row.get("first_use_of") else ""


def table_view(table: Table) -> TableView:
    """What the template needs of ``table``."""
    rows = [(_row_class(row), [cell_text(row.get(c)) for c in table.columns]) for row in table.rows]
    return TableView(title=table.title, note=table.note, columns=table.columns, rows=rows)


@cache
def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def render_html(report: Report, images: dict[str, bytes] | None = None) -> str:
    """The report as one self-contained HTML page (plots embedded as PNG ``data:`` URLs; drawn here unless
    ``images`` gives them by plot name)."""
    images = plots(report) if images is None else images
    party_name = report.parties.get(report.party, report.party) if report.party else None
    return _environment().get_template("report.html.j2").render(
        day=report.day.isoformat(),
        party=report.party,
        party_name=party_name,
        first_uses=report.tables["first_use"].rows,
        summary=[(summary_label(k), summary_text(k, v)) for k, v in report.summary.items()],
        notes=report.notes,
        images=[Image(name, PLOT_TITLES.get(name, name), base64.b64encode(png).decode("ascii"))
                for name, png in images.items()],
        tables=[table_view(t) for t in report.tables.values()],
    )


def write_html(report: Report, out: Path) -> dict[str, Path]:
    """Write ``report.html`` and the plots as ``plot-<name>.png`` into ``out``; returns the files by name."""
    out.mkdir(parents=True, exist_ok=True)
    images = plots(report)
    files: dict[str, Path] = {}
    for name, png in images.items():
        path = out / f"plot-{name}.png"
        path.write_bytes(png)
        files[f"plot-{name}"] = path
    files["html"] = out / "report.html"
    files["html"].write_text(render_html(report, images), encoding="utf-8")
    return files
