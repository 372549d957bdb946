"""The signed, hash-chained ledger and the parties' keys in PostgreSQL.

One chain across processes: entries are appended only inside a write transaction, which holds the writer lock
(:mod:`forewarn.store.postgres.connection`), and the head is read under it, so two appenders never both take
``seq`` N. Bodies are stored as the exact JSON text the ledger hashed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from typing import Any

import psycopg

from forewarn.errors import InvalidInput
from forewarn.ledger.canonical import parse_canonical
from forewarn.ledger.chain import LedgerEntry, Link
from forewarn.ledger.keys import PartyKey, PartySignature
from forewarn.store.postgres.connection import PostgresBase, Row

_COLUMNS = ("seq, prev_hash, digest, entry_hash, kind, subject, party_id, at, body, party_signature, service_key_id, "
            "service_signature")
_INSERT = ("INSERT INTO ledger_entries(seq, prev_hash, digest, entry_hash, kind, subject, party_id, at, body, "
           "party_signature, service_key_id, service_signature, party_nonce, operation_id, site_id) VALUES ")
_ROW = "(" + ", ".join(["%s"] * 15) + ")"
_LINK = "seq, prev_hash, digest, entry_hash, service_key_id, service_signature"
_KEY = "key_id, party_id, public_key, valid_from, revoked_at, replaces"
_BODY_FIELD = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")
_INDEXED = ("operation_id", "site_id")
"""Body fields copied into indexed columns."""


def _entry(row: Row) -> LedgerEntry:
    return LedgerEntry(
        seq=row[0], prev_hash=row[1], digest=row[2], entry_hash=row[3], kind=row[4], subject=row[5],
        party_id=row[6], at=row[7], body=parse_canonical(row[8]),
        party_signature=PartySignature.model_validate_json(row[9]) if row[9] else None,
        service_key_id=row[10] or None, service_signature=row[11] or None,
    )


def _link(r: Row) -> Link:
    return Link(seq=r[0], prev_hash=r[1], digest=r[2], entry_hash=r[3], service_key_id=r[4] or None,
                service_signature=r[5] or None)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class LedgerTables(PostgresBase):
    """The ledger and party keys (see module docstring)."""

    def ledger_head(self) -> tuple[int, str] | None:
        """Inside a write transaction the head is read once (under the writer lock) and then followed through
        this transaction's own appends; outside one it is read every time."""
        if self._depth and self._local.head is not None:
            return self._local.head  # type: ignore[no-any-return]
        row = self.row("SELECT seq, entry_hash FROM ledger_entries ORDER BY seq DESC LIMIT 1")
        head = (int(row[0]), str(row[1])) if row else None
        if self._depth:
            self._local.head = head
        return head

    def add_ledger_entries(self, entries: Sequence[tuple[LedgerEntry, str]]) -> None:
        """Append entries (each with its body as JSON text) in one INSERT; a reused (party, nonce) of a party
        signature is refused and none of them is stored."""
        if not entries:
            return
        params: list[object] = []
        for entry, body_json in entries:
            sig = entry.party_signature
            params += [entry.seq, entry.prev_hash, entry.digest, entry.entry_hash, entry.kind, entry.subject,
                       entry.party_id, entry.at, body_json, sig.model_dump_json() if sig else None,
                       entry.service_key_id or "", entry.service_signature or "", sig.nonce if sig else None,
                       *(_text(entry.body.get(name)) for name in _INDEXED)]
        signed_any = any(entry.party_signature is not None for entry, _ in entries)
        # a savepoint (two round trips) only where a reused nonce may be refused and the transaction go on
        with self.transaction(), self.savepoint() if signed_any else nullcontext():
            try:
                self._local.conn.execute(_INSERT + ", ".join([_ROW] * len(entries)), params)
            except psycopg.errors.UniqueViolation as exc:
                signed = [e.party_signature for e, _ in entries if e.party_signature is not None]
                if signed and "ledger_nonce" in str(exc):
                    raise InvalidInput("this signed request was already submitted (nonce reused)",
                                       {"nonce": signed[0].nonce} if len(signed) == 1 else {}) from exc
                raise
            last = entries[-1][0]
            self._local.head = (last.seq, last.entry_hash)

    def sign_ledger_entry(self, seq: int, service_key_id: str, service_signature: str) -> None:
        self.execute("UPDATE ledger_entries SET service_key_id = %s, service_signature = %s WHERE seq = %s",
                  (service_key_id, service_signature, seq))

    def ledger_checkpoint(self, seq: int) -> Link | None:
        row = self.row(f"SELECT {_LINK} FROM ledger_entries WHERE seq >= %s AND service_signature <> '' "
                        "ORDER BY seq LIMIT 1", (seq,))
        return _link(row) if row else None

    def iter_ledger(self, after_seq: int = 0, batch: int = 1000) -> Iterator[LedgerEntry]:
        last = after_seq
        while True:
            rows = self.rows(f"SELECT {_COLUMNS} FROM ledger_entries WHERE seq > %s ORDER BY seq LIMIT %s",
                             (last, batch))
            yield from (_entry(r) for r in rows)
            if len(rows) < batch:
                return
            last = int(rows[-1][0])

    def ledger_entries(self, seqs: Sequence[int]) -> list[LedgerEntry]:
        wanted = sorted(set(seqs))
        out: list[LedgerEntry] = []
        for i in range(0, len(wanted), 500):
            rows = self.rows(f"SELECT {_COLUMNS} FROM ledger_entries WHERE seq = ANY(%s) ORDER BY seq",
                             (wanted[i:i + 500],))
            out.extend(_entry(r) for r in rows)
        return out

    def ledger_links(self, first: int, last: int) -> list[Link]:
        rows = self.rows(f"SELECT {_LINK} FROM ledger_entries WHERE seq BETWEEN %s AND %s ORDER BY seq",
                         (first, last))
        return [_link(r) for r in rows]

    def find_ledger(self, kinds: Sequence[str] | None = None, subject: str | None = None,
                    party_id: str | None = None, body_equals: dict[str, str] | None = None) -> list[LedgerEntry]:
        sql, params = f"SELECT {_COLUMNS} FROM ledger_entries WHERE true", list[object]()
        if kinds is not None:
            sql += " AND kind = ANY(%s)"
            params.append(list(kinds))
        if subject is not None:
            sql += " AND subject = %s"
            params.append(subject)
        if party_id is not None:
            sql += " AND party_id = %s"
            params.append(party_id)
        for name, value in (body_equals or {}).items():
            if not _BODY_FIELD.match(name):
                raise ValueError(f"bad body field name {name!r}")
            if name in _INDEXED:
                sql += f" AND {name} = %s"  # the indexed copy (name is one of two literals)
            else:
                sql += " AND body::json ->> %s = %s"
                params.append(name)
            params.append(value)
        return [_entry(r) for r in self.rows(sql + " ORDER BY seq", params)]

    def ledger_nonce_used(self, party_id: str, nonce: str) -> bool:
        return self.row("SELECT 1 FROM ledger_entries WHERE party_id = %s AND party_nonce = %s",
                         (party_id, nonce)) is not None

    # ------------------------------------------------------------------ party keys
    def put_party_key(self, key: PartyKey) -> None:
        self.execute(f"INSERT INTO party_keys({_KEY}) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT(key_id) DO UPDATE "
                  "SET revoked_at = excluded.revoked_at",
                  (key.key_id, key.party_id, key.public_key, key.valid_from, key.revoked_at, key.replaces))

    def get_party_key(self, key_id: str) -> PartyKey | None:
        row = self.row(f"SELECT {_KEY} FROM party_keys WHERE key_id = %s", (key_id,))
        return self._party_key(row) if row else None

    def list_party_keys(self, party_id: str | None = None) -> list[PartyKey]:
        sql, params = f"SELECT {_KEY} FROM party_keys", []
        if party_id is not None:
            sql, params = sql + " WHERE party_id = %s", [party_id]
        return [self._party_key(r) for r in self.rows(sql + " ORDER BY party_id, valid_from, key_id", params)]

    @staticmethod
    def _party_key(row: Row) -> PartyKey:
        return PartyKey(key_id=row[0], party_id=row[1], public_key=row[2], valid_from=row[3], revoked_at=row[4],
                        replaces=row[5])
