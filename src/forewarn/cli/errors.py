"""How the command line reports an error: one shape for every command, on stderr, exit status 2."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console

from forewarn.errors import ForewarnError

err = Console(stderr=True, highlight=False, soft_wrap=True)


def report_error(exc: ForewarnError) -> None:
    """``error (code): message`` and the details, one per line (each invalid field on its own)."""
    err.print(f"[bold red]error[/] ({exc.code}): {exc.message}")
    for key, value in exc.details.items():
        if key == "errors" and isinstance(value, list):
            for e in value:
                err.print(f"  - {e.get('field')}: {e.get('message')}")
        else:
            err.print(f"  {key}: {value}")


def fail(exc: ForewarnError) -> NoReturn:
    """Report ``exc`` and end the command with exit status 2."""
    report_error(exc)
    raise typer.Exit(2)
