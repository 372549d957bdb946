"""The daily report: figures of one UTC day as one viewer may see them, as HTML with plots, CSV and JSON.

``make_report(repo, day, party)`` gathers what the viewer may see (:mod:`forewarn.service.day_view`) and computes
the tables (:mod:`forewarn.report.day_tables`, with the headline figures of :mod:`forewarn.report.headline`);
``write_report(report, out)`` writes ``report.html`` (self-contained), ``plot-*.png``, ``report.json``,
``summary.csv`` and one CSV per table. ``party`` None is the operator's (admin's) full report.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from forewarn.report.headline import build_report
from forewarn.report.model import Report, Table
from forewarn.report.table_files import report_json, write_tables
from forewarn.service.day_view import Visible, gather
from forewarn.store.repository import Repository

__all__ = ["Report", "Table", "Visible", "build_report", "gather", "make_report", "render_html", "report_json",
           "write_report"]


def make_report(repo: Repository, day: date, party: str | None = None) -> Report:
    """The report of ``day`` (UTC) for ``party`` (None: the operator's full report). Raises LookupError for an
    unknown party."""
    return build_report(gather(repo, day, party))


def render_html(report: Report) -> str:
    """The report as one self-contained HTML page with its plots (see :mod:`forewarn.report.render`)."""
    from forewarn.report.render import render_html as render  # matplotlib is imported only to draw

    return render(report)


def write_report(report: Report, out: Path) -> dict[str, Path]:
    """Write every file of the report into ``out`` (created if needed); returns the files by name."""
    from forewarn.report.render import write_html

    files = write_tables(report, out)
    files.update(write_html(report, out))
    return files
