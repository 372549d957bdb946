"""``forewarn ledger ...``: verify the signed, hash-chained record, export and check delivery receipts, audit.

Exit status: ``verify`` 0 when the chain holds, 2 when an entry is bad (the first bad entry is named);
``check-receipt`` 0 when the receipt is authentic and proves delivery and acknowledgement, 1 when it is
authentic but proves less (not delivered or not acknowledged), 2 when it is not authentic or malformed;
other commands 0, or 2 on invalid input. Times are UTC.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from rich.console import Console

from forewarn.cli.errors import fail
from forewarn.errors import ForewarnError, InvalidInput
from forewarn.ledger.keys import load_public_key, raw_public
from forewarn.ledger.receipts import check_receipt
from forewarn.service.compose import open_ledger
from forewarn.service.ledger import Ledger
from forewarn.service.receipts import build_receipt
from forewarn.service.settings import load_settings

ledger_app = typer.Typer(help="The signed, hash-chained ledger: verify it, export and check receipts, audit.",
                         no_args_is_help=True)
audit_app = typer.Typer(help="Audit queries answered from the ledger.", no_args_is_help=True)
key_app = typer.Typer(help="Parties' Ed25519 signing keys (registered, rotated, revoked; with history).",
                      no_args_is_help=True)
ledger_app.add_typer(audit_app, name="audit")
ledger_app.add_typer(key_app, name="key")
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

DbOption = Annotated[
    Path | None, typer.Option("--db", help="SQLite database file (default: $FOREWARN_DB, else ./forewarn.sqlite)")
]
JsonOption = Annotated[bool, typer.Option("--json", help="print the result as JSON")]
KeyOption = Annotated[
    str | None, typer.Option("--service-key", help="pin the service's Ed25519 public key: base64url raw key, PEM, "
                             "or a file holding either (see `forewarn ledger service-key`)")
]


def _ledger(db: Path | None) -> Ledger:
    return open_ledger(load_settings(db))


def _key(value: str) -> Ed25519PublicKey:
    """A public key given as text or as a file holding it."""
    path = Path(value)
    text = path.read_text(encoding="utf-8") if len(value) < 4096 and path.is_file() else value
    return load_public_key(text)


def _pinned(value: str | None) -> Ed25519PublicKey | None:
    return None if value is None else _key(value)


def _dump(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


@ledger_app.command()
def verify(
    db: DbOption = None, service_key: KeyOption = None, as_json: JsonOption = False,
    head: Annotated[str | None, typer.Option(help="SEQ:HASH of a head published earlier: it must still be in the "
                                                  "chain (detects entries deleted at the end)")] = None,
) -> None:
    """Check every entry: numbering without gaps, each link to the previous hash, each content digest and hash,
    the service signature, and party signatures against the key registry. Names the first bad entry."""
    try:
        ledger = _ledger(db)
        report = ledger.verify([_key(service_key)] if service_key else None)
        if report.ok and head is not None:
            seq_text, _, want = head.partition(":")
            if not seq_text.isdigit() or len(want) != 64:
                raise InvalidInput("--head is SEQ:HASH (the hash as 64 hex digits)")
            if not ledger.holds(int(seq_text), want):
                report.first_bad = int(seq_text)
                report.problem = "the published head is no longer in the chain (entries deleted or rewritten)"
    except ForewarnError as exc:
        fail(exc)
        return
    if as_json:
        _dump(report.as_dict())
    elif report.ok:
        out.print(f"[green]ledger OK[/]: {report.entries} entries; head {report.head_seq}:{report.head_hash}")
    else:
        out.print(f"[bold red]ledger BROKEN[/] at entry {report.first_bad}: {report.problem} "
                  f"({report.entries} entries before it verified)")
    if not report.ok:
        raise typer.Exit(2)


@ledger_app.command()
def receipt(
    delivery_id: str, db: DbOption = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="write the receipt here (default: stdout)")] = None,
) -> None:
    """Export the self-contained proof that a delivery's notice was delivered and acknowledged."""
    try:
        data = build_receipt(_ledger(db), delivery_id)
    except ForewarnError as exc:
        fail(exc)
        return
    text = json.dumps(data, indent=1, sort_keys=True)
    if out_file is None:
        typer.echo(text)
    else:
        out_file.write_text(text + "\n", encoding="utf-8")
        err.print(f"wrote {out_file} ({len(data['entries'])} entries, {len(data['links'])} links)")


@ledger_app.command("check-receipt")
def check_receipt_command(path: Path, service_key: KeyOption = None, as_json: JsonOption = False) -> None:
    """Check a receipt offline, with nothing but the file (and optionally the pinned service key); say what
    it proves, or why it proves nothing."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        result = check_receipt(data, _pinned(service_key))
    except (OSError, json.JSONDecodeError) as exc:
        err.print(f"[bold red]error[/]: cannot read {path}: {exc}")
        raise typer.Exit(2) from exc
    except ForewarnError as exc:
        fail(exc)
        return
    if as_json:
        _dump(result.as_dict())
    elif result.valid:
        out.print(f"[green]receipt authentic[/] for delivery {result.delivery_id}. It proves that:")
        for line in result.proves:
            out.print(f"  - {line}")
    else:
        out.print(f"[bold red]receipt NOT valid[/] for delivery {result.delivery_id}; it proves nothing:")
        for line in result.problems:
            out.print(f"  - {line}")
    if not result.valid:
        raise typer.Exit(2)
    if result.delivered_at is None or result.acknowledged_at is None:
        raise typer.Exit(1)


@ledger_app.command("service-key")
def service_key_command(db: DbOption = None) -> None:
    """Print the service's public keys (kid and base64url raw Ed25519) to pin when checking receipts."""
    keys = _ledger(db).service_keys()
    _dump({kid: raw_public(k) for kid, k in keys.items()})


@audit_app.command("shown")
def audit_shown(
    party: Annotated[str, typer.Option(help="the party that was shown")],
    operation: Annotated[str, typer.Option(help="the operation id")],
    db: DbOption = None, as_json: JsonOption = False,
) -> None:
    """What PARTY was shown of OPERATION, and when (deliveries and recorded disclosures)."""
    rows = _ledger(db).shown(party, operation)
    if as_json:
        _dump(rows)
        return
    if not rows:
        out.print(f"the ledger records nothing of {operation} shown to {party}")
    for r in rows:
        shown = r.get("shown") or {}
        fields = sorted(shown) if isinstance(shown, dict) else []
        detail = sorted(shown.get("detail", {})) if isinstance(shown, dict) else []
        out.print(f"entry {r['seq']} {r['kind']} at {r['recorded_at']}: delivered {r.get('delivered_at')}, "
                  f"acknowledged {r.get('acknowledged_at')}; fields {', '.join(fields)}"
                  + (f"; planning detail {', '.join(detail)}" if detail else ""))


@audit_app.command("site")
def audit_site(site_id: str, db: DbOption = None, as_json: JsonOption = False) -> None:
    """Which parties received the registration of protected site SITE_ID and acknowledged it, when."""
    data = _ledger(db).site_receipts(site_id)
    if as_json:
        _dump(data)
        return
    for reg in data["registrations"]:
        out.print(f"registered by {reg['party_id']} at {reg['at']} (entry {reg['seq']})")
    for r in data["recipients"]:
        out.print(f"  {r['party_id']}: delivery {r['delivery_id']} created {r['created_at']}, delivered "
                  f"{r['delivered_at']}, acknowledged {r['acknowledged_at']}")


@key_app.command("add")
def key_add(party: str, public_key: Annotated[str, typer.Argument(help="base64url raw key, PEM, or a file")],
            db: DbOption = None) -> None:
    """Register an Ed25519 public key for PARTY, valid from now."""
    try:
        key = _ledger(db).register_key(party, raw_public(_key(public_key)), datetime.now(UTC))
    except ForewarnError as exc:
        fail(exc)
        return
    _dump(key.model_dump(mode="json"))


@key_app.command("revoke")
def key_revoke(party: str, key_id: str, db: DbOption = None) -> None:
    """Revoke KEY_ID of PARTY now: signatures checked from now on are refused."""
    try:
        key = _ledger(db).revoke_key(party, key_id, datetime.now(UTC))
    except ForewarnError as exc:
        fail(exc)
        return
    _dump(key.model_dump(mode="json"))


@key_app.command("list")
def key_list(party: Annotated[str | None, typer.Argument()] = None, db: DbOption = None) -> None:
    """Keys with their history (valid_from, revoked_at, replaces)."""
    _dump([k.model_dump(mode="json") for k in _ledger(db).party_keys(party)])
