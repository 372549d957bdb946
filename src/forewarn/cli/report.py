"""``forewarn report``: the daily report of one UTC day, as a party or as the operator (registered in cli.py)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from forewarn.cli.errors import fail
from forewarn.errors import InvalidInput, NotFound
from forewarn.service.compose import open_repository
from forewarn.service.settings import load_settings

_out = Console(highlight=False)


def report(
    day: Annotated[str, typer.Option("--day", help="the UTC calendar day, YYYY-MM-DD (e.g. 2015-11-17)")],
    party: Annotated[str | None, typer.Option(
        "--party", help="the party whose report this is: only what it may see (default: the operator's full report)"
    )] = None,
    db: Annotated[Path | None, typer.Option(
        "--db", help="SQLite database file (default: $FOREWARN_DB, else ./forewarn.sqlite)")] = None,
    out: Annotated[Path, typer.Option(
        "--out", help="folder for report.html, plot-*.png, report.json, summary.csv and one CSV per table"
    )] = Path("forewarn-report"),
) -> None:
    """The daily report: activity per party, class and region; notices and lead times (late marked, first use
    flagged); acknowledgements; escalations; conflicts and how they were resolved; protected-site warnings;
    conformance incidents and predicted conflicts. HTML with plots (self-contained) plus CSV and JSON."""
    from forewarn.report import make_report, write_report  # matplotlib is imported only when a report is made
    from forewarn.report.headline import summary_label, summary_text

    try:
        when = date.fromisoformat(day)
    except ValueError:
        fail(InvalidInput(f"--day {day!r} is not a date YYYY-MM-DD"))
    settings = load_settings(db)
    if db is not None and not db.is_file():
        fail(InvalidInput(f"no database {db}"))
    repo = open_repository(settings)
    try:
        result = make_report(repo, when, party)
    except LookupError as exc:
        fail(NotFound(str(exc)))
    finally:
        repo.close()
    files = write_report(result, out)
    view = f"party {party}" if party else "operator (full)"
    _out.print(f"report of {when.isoformat()} (UTC), {view} view")
    for key, value in result.summary.items():
        _out.print(f"  {summary_label(key) + ':':52} {summary_text(key, value)}")
    _out.print(f"written: [bold]{files['html'].resolve()}[/] (self-contained), report.json, summary.csv and "
               f"{len(result.tables)} table CSVs in {out.resolve()}")
