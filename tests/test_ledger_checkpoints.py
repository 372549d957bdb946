"""Checkpoint signatures: the service signs the last ledger entry of each transaction, and the chain of hashes
carries that signature back over the transaction's other entries. Checked on a real SQLite file: which entries
are signed, that an attacker who rewrites an unsigned entry and recomputes every hash after it is still caught
at the checkpoint, that an unsigned head is reported, and that receipts carry (and need) their checkpoint."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from forewarn.errors import InvalidInput
from forewarn.ledger.canonical import canonical_json
from forewarn.ledger.chain import content_digest, link_hash
from forewarn.ledger.keys import sign_request
from forewarn.ledger.receipts import check_receipt
from forewarn.service.ledger import Draft, Ledger
from forewarn.service.notices import Forewarn
from forewarn.service.receipts import build_receipt
from forewarn.service.submissions import Submission
from forewarn.store import SQLiteRepository
from tests.builders import circle, operation
from tests.test_ledger import NOW, make_service, register
from tests.test_ledger_tamper import row


def stored(db: Path) -> list[tuple[int, str, bool]]:
    """(seq, kind, signed) of every stored entry, as the file holds them."""
    with sqlite3.connect(db) as conn:
        return [(r[0], r[1], bool(r[2])) for r in
                conn.execute("SELECT seq, kind, service_signature FROM ledger_entries ORDER BY seq")]


def test_only_the_last_entry_of_each_transaction_is_signed(db_path: Path) -> None:
    s = make_service(db_path)
    before = len(stored(db_path))
    s.notify(operation("u1", "usa", [circle(38.0, 35.0)]), NOW)  # a notice and its deliveries: one transaction
    s.notify(operation("r1", "rus", [circle(45.0, 35.0)]), NOW + timedelta(minutes=1))
    rows = stored(db_path)
    notices = [i for i, (_, kind, _) in enumerate(rows) if kind == "notice"]
    assert len(notices) == 2 and notices[0] >= before
    first_txn, second_txn = rows[notices[0]:notices[1]], rows[notices[1]:]
    for txn in (first_txn, second_txn):
        assert len(txn) > 2 and {k for _, k, _ in txn} == {"notice", "delivery_created"}
        assert [signed for _, _, signed in txn] == [False] * (len(txn) - 1) + [True]
    assert all(signed for _, kind, signed in rows[:before] if kind == "agreement")  # one agreement per transaction
    assert s.ledger.verify().ok


def _rewrite_and_rechain(db: Path, k: int) -> int:
    """Change entry ``k``'s body and recompute its digest and every hash after it, as an attacker without the
    service key would; the signatures cannot be recomputed. Returns the seq of the first signed entry from ``k``."""
    with sqlite3.connect(db) as conn:
        top = conn.execute("SELECT max(seq) FROM ledger_entries").fetchone()[0]
        prev = row(conn, k - 1).entry_hash
        checkpoint = None
        for seq in range(k, top + 1):
            e = row(conn, seq)
            body = dict(e.body, forged=True) if seq == k else e.body
            digest = content_digest(e.kind, e.subject, e.party_id, e.at, body, e.party_signature)
            entry_hash = link_hash(seq, prev, digest)
            conn.execute("UPDATE ledger_entries SET body = ?, digest = ?, prev_hash = ?, entry_hash = ? WHERE seq = ?",
                         (json.dumps(body), digest, prev, entry_hash, seq))
            prev = entry_hash
            if checkpoint is None and e.signed:
                checkpoint = seq
        assert checkpoint is not None
        return checkpoint


def _verify(db: Path) -> tuple[int | None, str | None]:
    repo = SQLiteRepository(db)
    try:
        report = Ledger(repo).verify()
        return report.first_bad, report.problem
    finally:
        repo.close()


def test_a_rewritten_unsigned_entry_is_caught_at_its_checkpoint(db_path: Path) -> None:
    s = make_service(db_path)
    s.notify(operation("u1", "usa", [circle(38.0, 35.0)]), NOW)
    rows = stored(db_path)
    k = next(seq for seq, kind, signed in rows if kind == "delivery_created" and not signed)
    assert isinstance(s.repo, SQLiteRepository)
    s.repo.close()
    checkpoint = _rewrite_and_rechain(db_path, k)
    assert checkpoint > k
    bad, problem = _verify(db_path)
    assert bad == checkpoint and problem is not None and "signature does not verify" in problem, problem


def test_an_unsigned_head_is_reported(db_path: Path) -> None:
    s = make_service(db_path)
    s.notify(operation("u1", "usa", [circle(38.0, 35.0)]), NOW)
    head = s.repo.ledger_head()
    assert head is not None
    first_of_txn = next(seq for seq, kind, _ in stored(db_path) if kind == "notice")
    assert isinstance(s.repo, SQLiteRepository)
    s.repo.close()
    with sqlite3.connect(db_path) as conn:  # the checkpoint's signature stripped
        conn.execute("UPDATE ledger_entries SET service_key_id = '', service_signature = '' WHERE seq = ?",
                     (head[0],))
    bad, problem = _verify(db_path)
    assert bad == first_of_txn and problem is not None and "no service signature" in problem, problem


def _unacknowledged_receipt(s: Forewarn) -> dict[str, Any]:
    """The receipt of a delivery whose last entry is an unsigned delivery_created in the middle of a notice's
    transaction: only the transaction's checkpoint, further on, signs it."""
    s.notify(operation("u1", "usa", [circle(38.0, 35.0)]), NOW)
    rows = stored(Path(s.repo.path))  # type: ignore[attr-defined]
    created = [seq for seq, kind, signed in rows if kind == "delivery_created" and not signed]
    entry = s.repo.ledger_entries([created[0]])[0]
    receipt: dict[str, Any] = json.loads(json.dumps(build_receipt(s.ledger, entry.subject)))
    assert max(e["seq"] for e in receipt["entries"]) == created[0]
    return receipt


def test_a_receipt_carries_the_checkpoint_that_signs_its_entries(db_path: Path) -> None:
    s = make_service(db_path)
    receipt = _unacknowledged_receipt(s)
    [service_key] = s.ledger.service_keys().values()
    result = check_receipt(receipt, service_key)
    assert result.valid, result.problems
    signed_links = [link for link in receipt["links"] if link["service_signature"]]
    assert len(signed_links) == 1 and signed_links[0]["seq"] > max(e["seq"] for e in receipt["entries"])
    # without the checkpoint, or with its signature altered, the receipt proves nothing
    dropped = json.loads(json.dumps(receipt))
    dropped["links"] = [link for link in dropped["links"] if not link["service_signature"]]
    problems = check_receipt(dropped, service_key).problems
    assert any("covered by no service signature" in p for p in problems), problems
    forged = json.loads(json.dumps(receipt))
    checkpoint = next(link for link in forged["links"] if link["service_signature"])
    checkpoint["service_signature"] = checkpoint["service_signature"][::-1]
    problems = check_receipt(forged, service_key).problems
    assert any("does not verify" in p for p in problems), problems
    # an unsigned entry of the receipt rewritten: its hash no longer matches
    changed = json.loads(json.dumps(receipt))
    changed["entries"][-1]["body"]["channel"] = "backup"
    assert not check_receipt(changed, service_key).valid


def _raw_bodies(db: Path) -> dict[int, str]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT seq, body FROM ledger_entries"))


def test_a_batch_of_entries_is_chained_signed_once_and_kept_in_canonical_form(db_path: Path) -> None:
    s = make_service(db_path)
    before = len(stored(db_path))
    bodies = [{"n": k, "x": 5.0, "big": 1e16, "tiny": 1e-7, "z": "é", "a": [1.5, None]} for k in range(3)]
    with s.repo.transaction():
        made = s.ledger.append_many([Draft("disclosure", f"op-{k}", b, "usa") for k, b in enumerate(bodies)], NOW)
    rows = stored(db_path)[before:]
    assert [seq for seq, _, _ in rows] == [e.seq for e in made] == list(range(before + 1, before + 4))
    assert [signed for _, _, signed in rows] == [False, False, True]
    raw = _raw_bodies(db_path)
    for entry, body in zip(made, bodies, strict=True):
        assert raw[entry.seq] == canonical_json(body).decode()  # what was hashed is what is kept
        [again] = s.repo.ledger_entries([entry.seq])
        assert again.body == body and again.recomputed_digest() == entry.digest
    assert made[1].prev_hash == made[0].entry_hash and made[2].prev_hash == made[1].entry_hash
    assert s.ledger.verify().ok


def test_a_refused_entry_refuses_its_whole_batch(db_path: Path) -> None:
    s = make_service(db_path)
    key = register(s, "usa")
    sig = s.ledger.accept(sign_request(key, "usa", "POST", "/v1/operations/x/cancel", {"a": 1}), "usa",
                          Submission("cancel", "x"), NOW)
    with s.repo.transaction():
        s.ledger.append("disclosure", "first", {"n": 0}, NOW, party_id="usa", party_signature=sig)
    before, head = len(stored(db_path)), s.repo.ledger_head()
    with s.repo.transaction():  # the caller goes on after the refusal, in the same transaction
        with pytest.raises(InvalidInput, match="nonce reused"):
            s.ledger.append_many([Draft("disclosure", "second", {"n": 1}, "usa"),
                                  Draft("disclosure", "replay", {"n": 2}, "usa", sig)], NOW)
        assert s.repo.ledger_head() == head  # neither entry of the batch is kept
        s.ledger.append_many([Draft("disclosure", "third", {"n": 3}, "usa")], NOW)
    assert [e.subject for e in s.repo.iter_ledger(after_seq=before)] == ["third"]
    assert s.ledger.verify().ok


def test_a_batch_stopped_by_any_error_leaves_nothing(db_path: Path) -> None:
    """Not only a refused nonce: whatever stops a batch part-way (here a body the driver cannot bind) rolls the
    whole batch back, and the next append follows the stored head (found in review)."""
    from forewarn.ledger.chain import sealed

    s = make_service(db_path)
    with s.repo.transaction():
        head = s.repo.ledger_head()
        assert head is not None
        first, first_json = sealed(None, head[0] + 1, head[1], "disclosure", "a", "usa", NOW, {"n": 1}, None)
        second, _ = sealed(None, head[0] + 2, first.entry_hash, "disclosure", "b", "usa", NOW, {"n": 2}, None)
        with pytest.raises(sqlite3.Error):
            s.repo.add_ledger_entries([(first, first_json), (second, object())])  # type: ignore[list-item]
        assert s.repo.ledger_head() == head
        s.ledger.append_many([Draft("disclosure", "after", {"n": 3}, "usa")], NOW)
    assert [e.subject for e in s.repo.iter_ledger(after_seq=head[0])] == ["after"]
    assert s.ledger.verify().ok
