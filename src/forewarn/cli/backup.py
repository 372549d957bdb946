"""``forewarn backup DEST``: a consistent copy of the live SQLite database, taken while the service runs
(registered in cli/main.py). Restoring is copying it back while the service is stopped (docs/resilience.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from forewarn.cli.errors import fail
from forewarn.errors import ForewarnError, InvalidInput
from forewarn.service.compose import open_repository
from forewarn.service.settings import load_settings
from forewarn.store.sqlite.repository import SQLiteRepository

_err = Console(stderr=True, highlight=False, soft_wrap=True)


def backup(
    dest: Annotated[Path, typer.Argument(help="the new backup file (must not exist)")],
    db: Annotated[Path | None, typer.Option(
        "--db", help="SQLite database file (default: $FOREWARN_DB, else ./forewarn.sqlite)")] = None,
) -> None:
    """Back up the database with SQLite's online backup API: safe while `forewarn serve` runs (writers are not
    blocked), checked with PRAGMA quick_check before it is named DEST. For PostgreSQL use pg_dump."""
    try:
        settings = load_settings(db)
        if settings.database_url:
            raise InvalidInput("FOREWARN_DATABASE_URL names a PostgreSQL database: back it up with pg_dump "
                               "(docs/postgresql.md); forewarn backup copies the SQLite file")
        if not Path(settings.db).is_file():
            raise InvalidInput(f"no database at {settings.db}")
        repo = open_repository(settings)
        if not isinstance(repo, SQLiteRepository):  # not reached: database_url is refused above
            raise InvalidInput("forewarn backup copies the SQLite file only")
        try:
            pages = repo.backup(dest)
        finally:
            repo.close()
    except ForewarnError as exc:
        fail(exc)
        return
    _err.print(f"backed up {Path(settings.db).resolve()} to {dest.resolve()} ({pages} pages, quick_check ok)")
