"""``forewarn serve``: the HTTP service in one process, or in N worker processes over one PostgreSQL database.

With ``--workers N`` (N > 1) uvicorn's supervisor binds the listening socket once and starts N processes that
accept on it; each builds its own application through :func:`forewarn.http.app.app_from_environment` (its own
pool, its own in-memory airspace kept a replica of the change log, its own delivery worker and LISTEN thread:
what one process does on its own, each does), and the supervisor starts a new one if one dies. The command
line's options reach them through the environment (``FOREWARN_HOST`` ..., ``FOREWARN_SERVE_ENV_FILE``), and the
parent applies the migrations and loads ``--scenario`` before they start. SQLite is one writer process per
file, with its live picture in that process: several workers are refused there (exit status 2).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from forewarn.cli.errors import fail
from forewarn.core.scopes import PARTY_SCOPES
from forewarn.errors import ForewarnError, InvalidInput
from forewarn.service.compose import build_service
from forewarn.service.notices import Forewarn
from forewarn.service.scenario import builtin_scenario, load_scenario
from forewarn.service.settings import Settings, load_settings

err = Console(stderr=True, highlight=False, soft_wrap=True)



def serve(
    db: Annotated[Path | None, typer.Option(
        "--db", help="SQLite database file (default: $FOREWARN_DB, else ./forewarn.sqlite)")] = None,
    host: Annotated[str | None, typer.Option(help="listen address (default: $FOREWARN_HOST, else 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="listen port (default: $FOREWARN_PORT, else 8000)")] = None,
    settings_file: Annotated[Path | None, typer.Option("--settings", help="a .env-style file of FOREWARN_* settings")
                             ] = None,
    scenario: Annotated[str | None, typer.Option(help="on an empty database, load this built-in scenario first")
                        ] = None,
    workers: Annotated[int, typer.Option(
        help="service processes sharing the port; more than 1 needs PostgreSQL (FOREWARN_DATABASE_URL)")] = 1,
) -> None:
    """Run the HTTP service (OpenAPI docs at /docs): on the embedded SQLite database, or with
    FOREWARN_DATABASE_URL on PostgreSQL, where --workers N runs N processes on one port."""
    import uvicorn

    from forewarn.http.app import SERVE_ENV_FILE, create_app

    overrides: dict[str, Any] = {k: v for k, v in {"db": db, "host": host, "port": port}.items() if v is not None}
    try:
        if settings_file is not None and not settings_file.is_file():
            raise InvalidInput(f"settings file {settings_file} does not exist")
        settings = load_settings(env_file=settings_file, **overrides)
        check_workers(settings, workers)
        service = build_service(settings)
        if scenario is not None and not service.parties_visible_to("operator", admin=True):
            _bootstrap(service, scenario, settings.db)
    except ForewarnError as exc:
        fail(exc)
        return
    where = "PostgreSQL (FOREWARN_DATABASE_URL)" if settings.database_url else str(Path(settings.db).resolve())
    err.print(f"database: {where}  docs: http://{settings.host}:{settings.port}/docs"
              + (f"  workers: {workers}" if workers > 1 else ""))
    if workers == 1:
        uvicorn.run(create_app(settings, service=service), host=settings.host, port=settings.port, log_level="info")
        return
    service.close()  # the workers open their own pools
    os.environ.update(worker_environment(overrides))
    if settings_file is not None:
        os.environ[SERVE_ENV_FILE] = str(settings_file.resolve())
    uvicorn.run("forewarn.http.app:app_from_environment", factory=True, workers=workers, host=settings.host,
                port=settings.port, log_level="info")


def check_workers(settings: Settings, workers: int) -> None:
    """Refuse a number of worker processes the store cannot serve (:class:`InvalidInput`, exit status 2)."""
    if workers < 1:
        raise InvalidInput(f"--workers must be at least 1 (got {workers})", {"workers": workers})
    if workers > 1 and not settings.database_url:
        raise InvalidInput(
            f"--workers {workers} needs PostgreSQL: set FOREWARN_DATABASE_URL. The SQLite store is one process's: "
            "its live picture and its writer live in that process, and other processes on the same file would "
            "detect conflicts against a stale picture", {"workers": workers})


def worker_environment(overrides: dict[str, Any]) -> dict[str, str]:
    """The environment variables that give the worker processes the command line's options (they read their
    settings from the environment, as every process does, with the same precedence: options over variables over
    the ``--settings`` file)."""
    return {f"FOREWARN_{k.upper()}": str(v) for k, v in overrides.items()}


def _bootstrap(service: Forewarn, scenario: str, db: Path) -> None:
    """Load a built-in scenario and give every party (and an 'operator' admin) credentials, written to a file."""
    from forewarn.core.model import Party

    load_scenario(service, builtin_scenario(scenario))
    service.put_party(Party(id="operator", name="Forewarn operator", kind="other"))
    out = {}
    for party in service.parties_visible_to("operator", admin=True):
        scopes = ["admin"] if party.id == "operator" else list(PARTY_SCOPES)
        cred, secret = service.issue_credential(party.id, scopes, datetime.now(UTC))
        out[party.id] = {"client_id": cred.client_id, "client_secret": secret, "scopes": scopes}
    path = Path(f"{db}.credentials.json")
    path.write_text(json.dumps(out, indent=2), encoding="utf-8")
    path.chmod(0o600)
    err.print(f"loaded scenario {scenario}; client credentials of every party written to {path.resolve()}")
