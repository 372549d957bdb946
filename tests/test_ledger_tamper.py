"""``forewarn ledger verify`` against a SQLite file tampered with directly (sqlite3): any changed, deleted,
inserted or reordered entry is detected and the first bad entry named."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from forewarn.cli.main import app
from forewarn.ledger.chain import LedgerEntry, ServiceSigner, seal
from forewarn.ledger.keys import raw_public
from forewarn.service.desk import DeliveryDesk
from forewarn.service.ledger import Ledger
from forewarn.service.tokens import IssuerKey
from forewarn.store import SQLiteRepository
from tests.builders import circle, operation
from tests.test_ledger import NOW, make_service, register, signed_notice

Tamper = Callable[[sqlite3.Connection, int], None]


def build(db: Path) -> int:
    """A ledger of a few dozen entries (notices, deliveries, a signed notice, acknowledgements); returns its
    length. The file is checkpointed and closed, ready to be copied."""
    s = make_service(db)
    key = register(s, "usa")
    op, sig = signed_notice(key, "usa", "signed")
    s.notify(op, NOW, party_signature=sig)
    for i in range(3):
        s.notify(operation(f"r{i}", "rus", [circle(40.0 + i, 35.0)]), NOW + timedelta(minutes=i))
    desk = DeliveryDesk(s)
    for d in s.repo.list_deliveries("fra")[:2]:
        desk.acknowledge(d.id, "fra", NOW + timedelta(minutes=10))
    length = s.repo.ledger_head()
    assert length is not None
    assert isinstance(s.repo, SQLiteRepository)
    s.repo.close()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return length[0]


def verify(db: Path, pinned: list[Ed25519PublicKey] | None = None) -> tuple[int | None, str | None]:
    repo = SQLiteRepository(db)
    try:
        report = Ledger(repo).verify(pinned)
        return report.first_bad, report.problem
    finally:
        repo.close()


def row(conn: sqlite3.Connection, seq: int) -> LedgerEntry:
    repo_row = conn.execute(
        "SELECT seq, prev_hash, digest, entry_hash, kind, subject, party_id, at, body, party_signature, "
        "service_key_id, service_signature FROM ledger_entries WHERE seq = ?", (seq,)).fetchone()
    names = ["seq", "prev_hash", "digest", "entry_hash", "kind", "subject", "party_id", "at", "body",
             "party_signature", "service_key_id", "service_signature"]
    data = dict(zip(names, repo_row, strict=True))
    data["body"] = json.loads(data["body"])
    data["party_signature"] = json.loads(data["party_signature"]) if data["party_signature"] else None
    data["service_key_id"] = data["service_key_id"] or None  # stored as '' on entries a checkpoint covers
    data["service_signature"] = data["service_signature"] or None
    return LedgerEntry.model_validate(data)


def insert(conn: sqlite3.Connection, e: LedgerEntry) -> None:
    conn.execute(
        "INSERT INTO ledger_entries(seq, prev_hash, digest, entry_hash, kind, subject, party_id, at, body, "
        "party_signature, service_key_id, service_signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (e.seq, e.prev_hash, e.digest, e.entry_hash, e.kind, e.subject, e.party_id, e.at, json.dumps(e.body),
         e.party_signature.model_dump_json() if e.party_signature else None, e.service_key_id or "",
         e.service_signature or ""))


def forged(conn: sqlite3.Connection, seq: int) -> LedgerEntry:
    """A well-formed entry at ``seq`` linked to entry ``seq - 1``, signed with a key that is not the service's
    but under the service's key id: everything checks out but the signature."""
    prev = row(conn, seq - 1)
    kid = conn.execute("SELECT service_key_id FROM ledger_entries WHERE service_key_id != '' LIMIT 1").fetchone()[0]
    signer = ServiceSigner(kid, Ed25519PrivateKey.generate())
    return seal(signer, seq, prev.entry_hash, "acknowledgement", "d-forged", "fra", NOW,
                {"delivery_id": "d-forged", "acknowledges": ["d-forged"]}, None)


def update_body(conn: sqlite3.Connection, k: int) -> None:
    conn.execute("UPDATE ledger_entries SET body = json_set(body, '$.forged', 1) WHERE seq = ?", (k,))


def update_time(conn: sqlite3.Connection, k: int) -> None:
    conn.execute("UPDATE ledger_entries SET at = '2015-11-16T00:00:00.000000+00:00' WHERE seq = ?", (k,))


def delete(conn: sqlite3.Connection, k: int) -> None:
    conn.execute("DELETE FROM ledger_entries WHERE seq = ?", (k,))


def swap_with_next(conn: sqlite3.Connection, k: int) -> None:
    conn.execute("UPDATE ledger_entries SET seq = -1 WHERE seq = ?", (k,))
    conn.execute("UPDATE ledger_entries SET seq = ? WHERE seq = ?", (k, k + 1))
    conn.execute("UPDATE ledger_entries SET seq = ? WHERE seq = -1", (k + 1,))


def insert_before(conn: sqlite3.Connection, k: int) -> None:
    """Shift entries k.. up by one and insert a forged entry at k."""
    top = conn.execute("SELECT max(seq) FROM ledger_entries").fetchone()[0]
    for seq in range(top, k - 1, -1):
        conn.execute("UPDATE ledger_entries SET seq = ? WHERE seq = ?", (seq + 1, seq))
    insert(conn, forged(conn, k))


TAMPERS: dict[str, tuple[Tamper, str]] = {
    "update a body": (update_body, "changed"),
    "update a time": (update_time, "changed"),
    "delete a row": (delete, "missing"),
    "swap two rows' sequence numbers": (swap_with_next, "previous hash"),
    "insert a forged row": (insert_before, "forged"),
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    db = tmp_path_factory.mktemp("ledger") / "template.sqlite"
    return db, build(db)


def copy(template: tuple[Path, int], tmp: Path) -> Path:
    db = tmp / "tampered.sqlite"
    shutil.copy(template[0], db)
    return db


def tamper(db: Path, change: Tamper, k: int) -> None:
    with sqlite3.connect(db) as conn:
        change(conn, k)


def test_the_untouched_ledger_verifies(template: tuple[Path, int], tmp_path: Path) -> None:
    db = copy(template, tmp_path)
    assert verify(db) == (None, None)
    assert template[1] > 20


@pytest.mark.parametrize("name", sorted(TAMPERS))
def test_each_tamper_is_detected_and_the_first_bad_entry_named(template: tuple[Path, int], tmp_path: Path,
                                                               name: str) -> None:
    db = copy(template, tmp_path)
    change, words = TAMPERS[name]
    k = template[1] // 2
    tamper(db, change, k)
    bad, problem = verify(db)
    assert bad == k and problem is not None and words in problem, problem


@given(name=st.sampled_from(sorted(TAMPERS)), where=st.floats(0.0, 1.0))
@settings(max_examples=40, deadline=None)
def test_any_tamper_anywhere_is_detected(template: tuple[Path, int], tmp_path_factory: pytest.TempPathFactory,
                                         name: str, where: float) -> None:
    n = template[1]
    k = 2 + round(where * (n - 3))  # 2 .. n-1: swaps need a next row, inserts a previous one
    db = copy(template, tmp_path_factory.mktemp("h"))
    tamper(db, TAMPERS[name][0], k)
    assert verify(db)[0] == k


def test_a_forged_row_appended_at_the_end_is_detected(template: tuple[Path, int], tmp_path: Path) -> None:
    db = copy(template, tmp_path)
    n = template[1]
    with sqlite3.connect(db) as conn:
        insert(conn, forged(conn, n + 1))
    bad, problem = verify(db)
    assert bad == n + 1 and problem is not None and "forged" in problem


def test_a_changed_party_signature_or_key_registry_is_detected(template: tuple[Path, int], tmp_path: Path) -> None:
    db = copy(template, tmp_path)
    with sqlite3.connect(db) as conn:
        seq = conn.execute("SELECT seq FROM ledger_entries WHERE party_signature IS NOT NULL").fetchone()[0]
        conn.execute("UPDATE ledger_entries SET party_signature = json_set(party_signature, '$.nonce', "
                     "'another-nonce') WHERE seq = ?", (seq,))
    assert verify(db)[0] == seq
    (tmp_path / "fresh").mkdir()
    db = copy(template, tmp_path / "fresh")
    other = Ed25519PrivateKey.generate().public_key()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE party_keys SET public_key = ?", (raw_public(other),))
    bad, problem = verify(db)
    assert bad == seq and problem is not None and "registered key" in problem


def test_truncation_at_the_end_is_caught_by_a_published_head(template: tuple[Path, int], tmp_path: Path) -> None:
    db = copy(template, tmp_path)
    runner = CliRunner()
    published = json.loads(runner.invoke(app, ["ledger", "verify", "--db", str(db), "--json"]).stdout)
    head = f"{published['head_seq']}:{published['head_hash']}"
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM ledger_entries WHERE seq >= ?", (template[1] - 1,))
    assert verify(db) == (None, None)  # a shorter chain is still a valid chain ...
    result = runner.invoke(app, ["ledger", "verify", "--db", str(db), "--head", head])
    assert result.exit_code == 2 and "published head" in result.output  # ... but not the one published


def test_a_chain_re_signed_with_a_substituted_service_key_fails_against_the_pinned_key(
        template: tuple[Path, int], tmp_path: Path) -> None:
    db = copy(template, tmp_path)
    repo = SQLiteRepository(db)
    real = list(Ledger(repo).service_keys().values())
    repo.close()
    thief = IssuerKey.generate()
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO issuer_keys VALUES (?, ?, ?)", (thief.kid, thief.private_pem(), "2099-01-01"))
        signer = ServiceSigner(thief.kid, thief.private)
        entries = [row(conn, s) for (s,) in conn.execute("SELECT seq FROM ledger_entries ORDER BY seq").fetchall()]
        prev = entries[0].prev_hash
        conn.execute("DELETE FROM ledger_entries")
        for e in entries:
            body = e.body | ({"forged": True} if e.seq == 3 else {})
            again = seal(signer, e.seq, prev, e.kind, e.subject, e.party_id, e.time, body, e.party_signature)
            insert(conn, again)
            prev = again.entry_hash
    assert verify(db) == (None, None)  # internally consistent: only a pinned key tells it apart
    bad, problem = verify(db, real)
    assert bad == 1 and problem is not None and "unknown service key" in problem


def test_cli_verify_names_the_first_bad_entry(template: tuple[Path, int], tmp_path: Path) -> None:
    db = copy(template, tmp_path)
    runner = CliRunner()
    ok = runner.invoke(app, ["ledger", "verify", "--db", str(db)])
    assert ok.exit_code == 0 and "ledger OK" in ok.output and f"{template[1]} entries" in ok.output
    tamper(db, update_body, 7)
    broken = runner.invoke(app, ["ledger", "verify", "--db", str(db)])
    assert broken.exit_code == 2 and "BROKEN at entry 7" in broken.output
    data = json.loads(runner.invoke(app, ["ledger", "verify", "--db", str(db), "--json"]).stdout)
    assert data["ok"] is False and data["first_bad"] == 7 and data["entries"] == 6
