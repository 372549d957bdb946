"""Forewarn: multi-party airspace deconfliction and advance notification.

Every command takes --db PATH (default: $FOREWARN_DB, else ./forewarn.sqlite). Times are UTC; altitudes are
metres above the WGS84 ellipsoid; distances metres. Exit status: 0 success, 2 invalid input or refused
request (nothing stored), 1 unexpected error.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from forewarn.cli.access import access_app
from forewarn.cli.backup import backup
from forewarn.cli.errors import fail, report_error
from forewarn.cli.ledger import ledger_app
from forewarn.cli.planfile import read_plan
from forewarn.cli.report import report
from forewarn.cli.serve import serve
from forewarn.cli.terminal import cell
from forewarn.cli.timeline import agreements_table, parties_table, print_outcome, when
from forewarn.cli.tracks import replay
from forewarn.core.policy import view_operation
from forewarn.core.scopes import DEFAULT_SCOPES, SCOPES
from forewarn.errors import ForewarnError, InvalidInput
from forewarn.service.compose import build_service
from forewarn.service.notices import Forewarn
from forewarn.service.scenario import LoadStep, builtin_scenario, load_scenario, read_scenario
from forewarn.service.settings import load_settings
from forewarn.service.situation import situation
from forewarn.web.mapview import render_situation_html

HELP = (
    "Forewarn: multi-party airspace deconfliction and advance notification.\n\n"
    "Every command takes --db PATH (default: $FOREWARN_DB, else ./forewarn.sqlite). Times are UTC; altitudes are "
    "metres above the WGS84 ellipsoid; distances are metres.\n\n"
    "Exit status: 0 success; 2 invalid input or refused request (nothing stored); 1 unexpected error."
)
app = typer.Typer(help=HELP, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
console = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

DbOption = Annotated[
    Path | None, typer.Option("--db", help="SQLite database file (default: $FOREWARN_DB, else ./forewarn.sqlite)")
]
JsonOption = Annotated[bool, typer.Option("--json", help="print the outcome as JSON")]
AsPartyOption = Annotated[str | None, typer.Option(
    "--as", help="show only what this party may see (through the sharing policy)")]
AtOption = Annotated[
    str | None, typer.Option("--at", help="the time taken as now, ISO 8601 with offset (default: the clock)")
]


def _service(db: Path | None) -> Forewarn:
    settings = load_settings(db)
    return build_service(settings)


def _now(at: str | None) -> datetime:
    if at is None:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(f"--at {at!r} is not an ISO 8601 time") from exc
    if value.tzinfo is None:
        raise InvalidInput("--at needs a UTC offset, e.g. 2015-11-17T03:00:00Z")
    return value.astimezone(UTC)


def _dump(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def _write_situation(service: Forewarn, out: Path, title: str) -> dict[str, str]:
    out.mkdir(parents=True, exist_ok=True)
    collection = situation(service.repo)
    geo = out / "situation.geojson"
    page = out / "situation.html"
    geo.write_text(json.dumps(collection, indent=1), encoding="utf-8")
    page.write_text(render_situation_html(collection, title=title), encoding="utf-8")
    return {"geojson": str(geo.resolve()), "html": str(page.resolve())}


@app.command()
def demo(
    db: DbOption = None,
    out: Annotated[Path, typer.Option(help="folder for situation.geojson and situation.html")] = Path("forewarn-out"),
    as_json: JsonOption = False,
    scenario: Annotated[str, typer.Option(help="built-in scenario to replay")] = "raqqa-2015",
) -> None:
    """Replay the built-in 17 Nov 2015 scenario on the embedded database and print its timeline."""
    try:
        service = _service(db)
        scen = builtin_scenario(scenario)
        steps = load_scenario(service, scen)
        files = _write_situation(service, out, f"Forewarn - {scen.name}")
    except ForewarnError as exc:
        fail(exc)
        return
    repo = service.repo
    db_path = str(Path(service.settings.db).resolve())
    if as_json:
        _dump({
            "scenario": scen.name, "database": db_path, "files": files,
            "parties": [p.model_dump(mode="json") for p in repo.list_parties()],
            "agreements": [a.model_dump(mode="json") for a in repo.list_agreements()],
            "steps": [s.model_dump(mode="json") for s in steps],
        })
        return
    console.rule(f"[bold]Forewarn demo: {scen.name}")
    console.print(scen.description)
    console.print(f"database: [bold]{db_path}[/]")
    console.print(parties_table(repo.list_parties()))
    console.print(agreements_table(repo.list_agreements()))
    _print_steps(service, steps)
    console.print(f"situation written: [bold]{files['geojson']}[/] and [bold]{files['html']}[/] "
                  "(open the HTML file in a browser; it needs no network)")


def _print_steps(service: Forewarn, steps: list[LoadStep]) -> None:
    repo = service.repo
    names = {p.id: p.name for p in repo.list_parties()}
    ops = {o.id: o for o in repo.list_operations()}
    sites = [s for s in steps if s.kind == "site"]
    if sites:
        console.print(f"protected sites registered: {', '.join(s.id for s in sites)}")
    console.rule("timeline (UTC)")
    conflicts = warnings = 0
    for step in steps:
        if step.kind == "plan":
            console.print(f"[dim]{when(step.at)}[/]  {step.id} stored as planned ({step.status})")
        if step.kind != "notice" or step.outcome is None:
            continue
        o = step.outcome
        op = ops.get(o.operation_id)
        nvol = len(op.volumes) if op else 0
        note = "" if step.status == "created" else " [dim](already stored: replayed from the database)[/]"
        console.print(f"[bold cyan]{when(o.at)}[/]  [bold]{names.get(o.party_id, o.party_id)}[/] notified "
                      f"[bold]{o.operation_id}[/] ({o.activity_class}, {nvol} volume(s)){note}")
        print_outcome(console, o, ops, names)
        conflicts += len(o.conflicts)
        warnings += len(o.site_warnings)
    console.rule()
    console.print(f"{sum(1 for s in steps if s.kind == 'notice')} notices, {conflicts} conflict(s), "
                  f"{warnings} protected-site warning(s)")


@app.command()
def load(path: Path, db: DbOption = None, as_json: JsonOption = False) -> None:
    """Load parties, agreements, protected sites and operations from a YAML or JSON scenario file."""
    try:
        service = _service(db)
        steps = load_scenario(service, read_scenario(path))
    except ForewarnError as exc:
        fail(exc)
        return
    if as_json:
        _dump([s.model_dump(mode="json") for s in steps])
        return
    for s in steps:
        console.print(f"{s.kind:9} {s.id:32} {s.status}")
    _print_steps(service, [s for s in steps if s.status == "created"])


@app.command()
def check(
    plan: Path,
    party: Annotated[str, typer.Option("--as", help="the party planning the operation")],
    db: DbOption = None,
    operation_class: Annotated[str | None, typer.Option("--class", help="activity class")] = None,
    at: AtOption = None,
    as_json: JsonOption = False,
) -> None:
    """What-if: the conflicts a planned operation would meet and the least change clearing them (stores nothing)."""
    _plan_command(plan, party, None, db, operation_class, at, as_json, store=False)


def _plan_command(plan: Path, party: str, operation_id: str | None, db: Path | None, operation_class: str | None,
                  at: str | None, as_json: bool, store: bool) -> None:
    """check (store=False) and file (store=True): read the plan, run the use case, print the outcome."""
    try:
        service = _service(db)
        op = read_plan(plan, party_id=party, operation_id=operation_id, activity_class=operation_class)
        outcome = service.notify(op, _now(at)) if store else service.check(op, _now(at))
    except ForewarnError as exc:
        fail(exc)
        return
    if as_json:
        _dump(outcome.model_dump(mode="json"))
        return
    names = {p.id: p.name for p in service.repo.list_parties()}
    ops = {o.id: o for o in service.repo.list_operations()} | {op.id: op}
    if store:
        console.print(f"notice {outcome.notice_id}: {op.id} notified")
    else:
        console.print(f"what-if for [bold]{op.id}[/] of {party} ({op.activity_class}, {len(op.volumes)} volume(s)) "
                      "- nothing stored")
    if not outcome.conflicts:
        console.print("[green]no conflict with any notified operation: no adjustment needed[/]")
    print_outcome(console, outcome, ops, names)


@app.command("file")
def file_notice(
    plan: Path,
    party: Annotated[str, typer.Option("--as", help="the party filing the notice")],
    operation_id: Annotated[str, typer.Option("--id", help="operation id")],
    db: DbOption = None,
    operation_class: Annotated[str | None, typer.Option("--class", help="activity class")] = None,
    at: AtOption = None,
    as_json: JsonOption = False,
) -> None:
    """File a notice: store the operation as notified and report its conflicts and warnings."""
    _plan_command(plan, party, operation_id, db, operation_class, at, as_json, store=True)


@app.command()
def cancel(
    operation_id: str,
    party: Annotated[str, typer.Option("--as", help="the party that owns the operation")],
    db: DbOption = None,
    at: AtOption = None,
) -> None:
    """Cancel an operation of your party (it leaves detection; the old versions are kept)."""
    try:
        outcome = _service(db).cancel(operation_id, party, _now(at))
    except ForewarnError as exc:
        fail(exc)
        return
    console.print(f"notice {outcome.notice_id}: {operation_id} cancelled")


@app.command("list")
def list_records(
    what: Annotated[str, typer.Argument(help="parties | agreements | operations | sites | notices")],
    db: DbOption = None,
    as_json: JsonOption = False,
    as_party: AsPartyOption = None,
) -> None:
    """List stored records (all of them: the operator's view; with --as, operations as that party may see them)."""
    kinds = ("parties", "agreements", "operations", "sites", "notices")
    if what not in kinds:
        fail(InvalidInput(f"cannot list {what!r}; choose one of {', '.join(kinds)}"))
    if as_party is not None and what != "operations":
        fail(InvalidInput("--as applies to: list operations"))
    service = _service(db)
    repo = service.repo
    if as_party is not None:
        book = service.airspace.book
        views = [v for op in repo.list_operations() if (v := view_operation(as_party, op, book)) is not None]
        if as_json:
            _dump(views)
            return
        _print_rows(what, [_row(v) for v in views])
        return
    if what == "parties" and not as_json:
        console.print(parties_table(repo.list_parties()))
        return
    if what == "agreements" and not as_json:
        console.print(agreements_table(repo.list_agreements()))
        return
    loaders: dict[str, Any] = {"parties": repo.list_parties, "agreements": repo.list_agreements,
                               "operations": repo.list_operations, "sites": repo.list_sites,
                               "notices": repo.list_notices}
    records: list[Any] = loaders[what]()
    if as_json:
        _dump([r.model_dump(mode="json") for r in records])
        return
    _print_rows(what, [_row(r) for r in records])


def _print_rows(what: str, rows: list[dict[str, str]]) -> None:
    table = Table(title=what.capitalize(), title_justify="left")
    for col in rows[0].keys() if rows else ["(none)"]:
        table.add_column(col)
    for row in rows:  # stored text is escaped: nothing unprintable reaches the terminal
        table.add_row(*(cell(v) for v in row.values()))
    console.print(table)


def _row(record: Any) -> dict[str, str]:
    data = record if isinstance(record, dict) else record.model_dump(mode="json")
    if "volumes" in data:
        return {"id": data["id"], "party": data["party_id"], "class": data["activity_class"],
                "state": data["state"], "version": str(data["version"]), "volumes": str(len(data["volumes"])),
                "start": data["volumes"][0]["start"], "notified_at": str(data["notified_at"])}
    if "outcome" in data:
        o = data["outcome"]
        return {"id": str(data["id"]), "kind": data["kind"], "operation": data["operation_id"],
                "version": str(data["version"]), "at": data["at"], "conflicts": str(len(o["conflicts"])),
                "site warnings": str(len(o["site_warnings"]))}
    return {k: str(v) for k, v in data.items()}


@app.command()
def export(
    geojson: Annotated[bool, typer.Option("--geojson", help="export the situation as GeoJSON")] = True,
    out: Annotated[Path | None, typer.Option(help="write to this file instead of standard output")] = None,
    html: Annotated[Path | None, typer.Option(help="also write a self-contained HTML map here")] = None,
    planned: Annotated[bool, typer.Option(help="include planned (not yet notified) operations")] = False,
    db: DbOption = None,
    as_party: AsPartyOption = None,
) -> None:
    """Export the situation (volumes, protected sites, conflicts, warnings) as GeoJSON: all of it (the operator's
    view), or with --as what that party may see (through the sharing policy, as GET /v1/situation)."""
    service = _service(db)
    collection = situation(service.repo, include_planned=planned, viewer=as_party,
                           book=service.airspace.book if as_party is not None else None)
    text = json.dumps(collection, indent=1)
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text, encoding="utf-8")
        err.print(f"wrote {out} ({len(collection['features'])} features)")
    if html is not None:
        html.write_text(render_situation_html(collection, title="Forewarn situation"), encoding="utf-8")
        err.print(f"wrote {html}")


party_app = typer.Typer(help="Parties and their client credentials.", no_args_is_help=True)
app.add_typer(party_app, name="party")
app.add_typer(ledger_app, name="ledger")
app.add_typer(access_app, name="access")


@party_app.command("add")
def party_add(
    party_id: str,
    name: Annotated[str, typer.Option(help="display name")],
    kind: Annotated[str, typer.Option(help="military, humanitarian, civil or other")] = "military",
    scopes: Annotated[str, typer.Option(
        help=f"space-separated scopes: {' '.join(SCOPES)}")] = " ".join(DEFAULT_SCOPES),
    webhook: Annotated[str | None, typer.Option(help="primary webhook URL for deliveries")] = None,
    backup_webhook: Annotated[str | None, typer.Option(help="backup webhook URL for escalations")] = None,
    db: DbOption = None,
) -> None:
    """Create (or update) a party and print new client credentials for POST /v1/token (the secret is shown once)."""
    from pydantic import ValidationError

    from forewarn.core.model import Party
    from forewarn.errors import validation_errors

    try:
        party = Party(id=party_id, name=name, kind=kind, webhook_url=webhook,
                      backup_webhook_url=backup_webhook)
        service = _service(db)
        service.put_party(party)
        cred, secret = service.issue_credential(party_id, scopes.split(), datetime.now(UTC))
    except ValidationError as exc:
        fail(InvalidInput("invalid party", {"errors": validation_errors(exc)}))
        return
    except ForewarnError as exc:
        fail(exc)
        return
    _dump({"party_id": party_id, "client_id": cred.client_id, "client_secret": secret, "scopes": list(cred.scopes)})


app.command()(report)
app.command()(serve)
app.command()(replay)
app.command()(backup)


def main() -> None:
    """The console entry point (``forewarn``, ``python -m forewarn``): the commands, with an error that escapes
    one of them (invalid settings in the environment, say) reported as every other error is, exit status 2,
    instead of as a traceback."""
    try:
        app()
    except ForewarnError as exc:
        report_error(exc)
        raise SystemExit(2) from None
