"""``forewarn access ...``: disable and re-enable parties, list and revoke their client credentials. Each change
is recorded in the ledger and takes effect at once for a running service sharing the database: every request's
token is checked against the store. Exit status 0, or 2 on invalid input (unknown party or credentials, a party
already disabled, credentials already revoked). Times are UTC."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from forewarn.cli.errors import fail
from forewarn.cli.terminal import cell
from forewarn.errors import ForewarnError, NotFound
from forewarn.service.compose import build_service
from forewarn.service.notices import Forewarn
from forewarn.service.settings import load_settings

access_app = typer.Typer(help="Access control: disable parties, revoke client credentials (recorded in the ledger).",
                         no_args_is_help=True)
out = Console(highlight=False, soft_wrap=True)

DbOption = Annotated[
    Path | None, typer.Option("--db", help="SQLite database file (default: $FOREWARN_DB, else ./forewarn.sqlite)")
]
ReasonOption = Annotated[str, typer.Option(help="why (kept in the ledger entry)")]
JsonOption = Annotated[bool, typer.Option("--json", help="print the result as JSON")]


def _service(db: Path | None) -> Forewarn:
    return build_service(load_settings(db))


def _dump(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


@access_app.command("disable")
def disable(party_id: str, reason: ReasonOption = "", db: DbOption = None) -> None:
    """Disable a party: none of its tokens is accepted any more (whoever issued them), its credentials get no
    new token."""
    try:
        _service(db).disable_party(party_id, datetime.now(UTC), reason)
    except ForewarnError as exc:
        fail(exc)
    _dump({"party_id": party_id, "disabled": True})


@access_app.command("enable")
def enable(party_id: str, reason: ReasonOption = "", db: DbOption = None) -> None:
    """Enable a disabled party again."""
    try:
        _service(db).enable_party(party_id, datetime.now(UTC), reason)
    except ForewarnError as exc:
        fail(exc)
    _dump({"party_id": party_id, "disabled": False})


@access_app.command("revoke")
def revoke(client_id: str, reason: ReasonOption = "", db: DbOption = None) -> None:
    """Revoke client credentials: the secret gets no new token and the tokens issued for it stop working."""
    try:
        cred = _service(db).revoke_credential(client_id, datetime.now(UTC), reason)
    except ForewarnError as exc:
        fail(exc)
        return
    _dump({"client_id": cred.client_id, "party_id": cred.party_id, "revoked_at": cred.revoked_at})


@access_app.command("show")
def show(party_id: str, db: DbOption = None, as_json: JsonOption = False) -> None:
    """A party's state (disabled since when) and its credentials (never their secrets)."""
    try:
        access = _service(db).party_access(party_id)
        if access is None:
            raise NotFound(f"no party {party_id}", {"party_id": party_id})
    except ForewarnError as exc:
        fail(exc)
        return
    if as_json:
        _dump({"party_id": party_id, "disabled_at": access.disabled_at, "credentials": [
            {"client_id": c.client_id, "scopes": list(c.scopes), "created_at": c.created_at,
             "revoked_at": c.revoked_at} for c in access.credentials]})
        return
    out.print(f"party {party_id}: " + (f"disabled since {access.disabled_at.isoformat()}" if access.disabled_at
                                       else "enabled"))
    table = Table(title="Credentials", title_justify="left")
    for col in ("client_id", "scopes", "created_at", "revoked_at"):
        table.add_column(col)
    for c in access.credentials:
        table.add_row(cell(c.client_id), cell(" ".join(c.scopes)), cell(c.created_at.isoformat()),
                      cell(c.revoked_at.isoformat() if c.revoked_at else "-"))
    out.print(table)
