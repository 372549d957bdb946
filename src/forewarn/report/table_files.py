"""CSV and JSON files of every table of a report (UTF-8; times ISO 8601 UTC; durations s; distances m)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from forewarn.report.model import Report, Table


def table_csv(table: Table) -> str:
    """One table as CSV text: a header of its columns, then one line per row (empty cell for None)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(table.columns), lineterminator="\n")
    writer.writeheader()
    for row in table.rows:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in table.columns})
    return buffer.getvalue()


def summary_csv(report: Report) -> str:
    """The headline figures as a two-column CSV (figure, value)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["figure", "value"])
    for key, value in report.summary.items():
        writer.writerow([key, "" if value is None else value])
    return buffer.getvalue()


def report_json(report: Report) -> str:
    """The whole report (summary and every table) as indented JSON."""
    return json.dumps(report.to_json(), indent=1, ensure_ascii=False)


def write_tables(report: Report, out: Path) -> dict[str, Path]:
    """Write ``report.json``, ``summary.csv`` and ``<table>.csv`` for every table into ``out``; returns the
    files by name."""
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": out / "report.json", "summary": out / "summary.csv"}
    files["json"].write_text(report_json(report), encoding="utf-8")
    files["summary"].write_text(summary_csv(report), encoding="utf-8")
    for name, table in report.tables.items():
        path = out / f"{name}.csv"
        path.write_text(table_csv(table), encoding="utf-8")
        files[name] = path
    return files
