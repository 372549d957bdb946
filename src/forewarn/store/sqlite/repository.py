"""SQLite backend: one file, WAL journal, foreign keys on, versioned migrations applied at open.

One writer at a time: ``transaction()`` takes ``BEGIN IMMEDIATE`` under a process-wide lock, so a
read-check-write use case cannot interleave with another. ``savepoint()`` lets one transaction hold several
filings, each undone alone if it is rejected (the service's group commit).

Durability: ``synchronous = FULL`` by default, so a COMMIT is on disk (the WAL fsynced) before the service
answers: a filing answered 2xx survives a crash of the process *and* of the machine. The service commits the
filings that arrive together in one transaction, so that costs one fsync per batch, not per filing. With
``synchronous="normal"`` (setting ``sqlite_synchronous``) a COMMIT is written to the WAL but not fsynced: it still
survives a crash of the process, but a power loss or a crash of the machine may lose the last transactions
(never corrupt the file), and with them ledger entries whose checkpoint a party may already have read. For
storage that survives power loss on its own (battery-backed cache, replicated block storage), or where that
risk is accepted for latency.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from forewarn.core.credentials import Credential, PartyAccess
from forewarn.core.model import Agreement, Operation, OperationState, Party, ProtectedSite, Subscription
from forewarn.core.records import Delivery, NoticeOutcome
from forewarn.core.text import STORED
from forewarn.errors import ForewarnError, InvalidInput
from forewarn.ledger.canonical import parse_canonical
from forewarn.ledger.chain import LedgerEntry, Link
from forewarn.ledger.keys import PartyKey, PartySignature
from forewarn.store.keyfile import KeyFile, create_private_file, public_pem_of, split_legacy, with_current
from forewarn.store.repository import StoredNotice

log = logging.getLogger("forewarn.store")


def _migrations() -> list[tuple[int, str]]:
    folder = resources.files("forewarn.store.sqlite") / "migrations"
    out = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            out.append((int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8")))
    return sorted(out)


def _statements(script: str) -> list[str]:
    """Split a migration script into complete statements (comments dropped)."""
    out: list[str] = []
    pending = ""
    for line in script.splitlines():
        if line.strip().startswith("--"):
            continue
        pending += line + "\n"
        if sqlite3.complete_statement(pending):
            out.append(pending.strip())
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete statement in migration: {pending.strip()[:80]}")
    return out


def _ts(value: datetime) -> str:
    # fixed width (microseconds always shown) so that stored times also compare correctly as text
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _opt(value: datetime | None) -> str | None:
    return _ts(value) if value is not None else None


class DamagedStore(ForewarnError):
    """The database file fails SQLite's integrity check or cannot be read: the service must not serve from it."""

    code = "store_damaged"


def _damaged(path: str, problems: list[str]) -> DamagedStore:
    return DamagedStore(
        f"the database {path} is damaged ({'; '.join(problems)[:300]}). Do not serve from it: stop the service, keep "
        f"the damaged file aside, restore the last backup (made with `forewarn backup`) to {path}, delete "
        f"{path}-wal and {path}-shm, and start again (see docs/resilience.md)", {"file": path, "problems": problems})


SYNCHRONOUS_MODES = ("full", "normal")
"""The durability levels offered (SQLite's ``PRAGMA synchronous``): see the module docstring."""


class SQLiteRepository:
    """The embedded default store (see module docstring)."""

    def __init__(self, path: str | Path, *, synchronous: str = "full", key_file: KeyFile | None = None) -> None:
        self.path = str(path)
        if self.path == ":memory:":
            raise ValueError("SQLiteRepository needs a file (each thread opens its own connection to it)")
        if synchronous not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS_MODES)}, not {synchronous!r}")
        self.synchronous = synchronous
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        for secret in (self.path, self.path + "-wal", self.path + "-shm"):
            create_private_file(Path(secret))  # 0600 at creation: SQLite keeps the mode of existing files
        self.key_file = key_file or KeyFile(Path(self.path + ".key"))
        """Where the service's private signing key lives (never in the database): see :mod:`..keyfile`."""
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.RLock()
        self._parties: dict[str, Party] = {}
        self.delivery_hooks: list[Callable[[list[Delivery]], None]] = []
        """Called after each COMMIT that stored deliveries, with them (``seq`` set), in commit order, while the
        writer lock is still held: the event streams' in-memory tail (``api.runtime.StreamHub.publish``)."""
        self.quick_check()
        self._migrate()
        self._move_key_out()

    # ------------------------------------------------------------------ integrity & backup
    def quick_check(self, limit: int = 10) -> None:
        """``PRAGMA quick_check`` on the file (run at open): raises :class:`DamagedStore` naming the file and what
        to do when it reports a problem or the file is not a readable database."""
        try:
            problems = [str(r[0]) for r in self._conn.execute(f"PRAGMA quick_check({int(limit)})")]
        except sqlite3.DatabaseError as exc:
            problems = [str(exc)]
        if problems != ["ok"]:
            self.close()
            raise _damaged(self.path, problems)

    def probe(self) -> None:
        """Cheap reads, on a fresh read-only connection (no cached pages), of the schema and of the newest rows of
        the ledger and the outbox (what a health check can afford on every call); raises :class:`DamagedStore`
        when they fail."""
        try:
            conn = sqlite3.connect(f"file:{Path(self.path).resolve()}?mode=ro", uri=True, timeout=5)
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
                for table in ("ledger_entries", "deliveries"):
                    conn.execute(f"SELECT * FROM {table} ORDER BY seq DESC LIMIT 1").fetchall()
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            raise _damaged(self.path, [str(exc)]) from exc

    def backup(self, dest: str | Path) -> int:
        """A consistent copy of the live database at ``dest`` (SQLite's online backup API, one step: a read
        snapshot that does not block writers in WAL mode), checked with ``quick_check``; written to a temporary
        name first, so ``dest`` is never a partial copy. Returns the pages copied. ``dest`` must not exist."""
        target = Path(dest)
        if target.exists():
            raise InvalidInput(f"{target} already exists: back up to a new file")
        partial = target.with_name(target.name + ".partial")
        partial.unlink(missing_ok=True)
        copy = sqlite3.connect(partial)
        try:
            self._conn.backup(copy)
            problems = [str(r[0]) for r in copy.execute("PRAGMA quick_check")]
            pages = int(copy.execute("PRAGMA page_count").fetchone()[0])
            copy.execute("PRAGMA journal_mode = DELETE")
        finally:
            copy.close()
        if problems != ["ok"]:
            partial.unlink(missing_ok=True)
            raise _damaged(self.path, problems)
        partial.rename(target)
        return pages

    @property
    def _conn(self) -> sqlite3.Connection:
        """This thread's connection (WAL: readers never wait for the writer)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self.synchronous.upper()}")
            self._local.conn = conn
            self._local.depth = 0
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        """Close every connection this repository opened."""
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()

    # ------------------------------------------------------------------ transactions & schema
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT on this thread's connection; nested calls join the outer transaction.
        Writers are also serialised in-process, so use cases never meet SQLITE_BUSY from each other."""
        conn = self._conn
        with self._lock:
            if self._local.depth:
                self._local.depth += 1
                try:
                    yield
                finally:
                    self._local.depth -= 1
                return
            conn.execute("BEGIN IMMEDIATE")
            self._local.depth = 1
            self._local.head = None
            self._local.created = []
            self._local.before_commit = {}
            try:
                yield
                for hook in list(self._local.before_commit.values()):
                    hook()
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")
                if self._local.created:
                    self._published(self._local.created)
            finally:
                self._local.depth = 0
                self._local.head = None
                self._local.created = []
                self._local.before_commit = {}

    def before_commit(self, key: str, hook: Callable[[], None]) -> None:
        """Run ``hook`` at the end of the open transaction, just before its COMMIT (inside it: what it writes
        commits too, and if it raises the transaction rolls back). One hook per ``key`` per transaction."""
        if not self._local.depth:
            raise RuntimeError("before_commit needs an open transaction")
        self._local.before_commit.setdefault(key, hook)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Inside an open transaction: a SAVEPOINT the block's writes roll back to if it raises (the rest of the
        transaction goes on); the cached ledger head and the deliveries to publish roll back with it."""
        if not self._local.depth:
            raise RuntimeError("a savepoint needs an open transaction")
        conn = self._conn
        head, created = self._local.head, len(self._local.created)
        conn.execute("SAVEPOINT filing")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK TO filing")
            conn.execute("RELEASE filing")
            self._local.head = head
            del self._local.created[created:]
            raise
        else:
            conn.execute("RELEASE filing")

    def _published(self, created: list[Delivery]) -> None:
        for hook in list(self.delivery_hooks):
            try:
                hook(created)
            except Exception:  # a listener never undoes a commit; streams fall back to reading the table
                log.exception("delivery hook failed")

    def _migrate(self) -> None:
        with self.transaction():
            self._conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                               "applied_at TEXT NOT NULL)")
            done = {r[0] for r in self._conn.execute("SELECT version FROM schema_migrations")}
            for version, sql in _migrations():
                if version in done:
                    continue
                for statement in _statements(sql):
                    self._conn.execute(statement)
                self._conn.execute("INSERT INTO schema_migrations VALUES (?, ?)",
                                   (version, _ts(datetime.now(UTC))))

    def _move_key_out(self) -> None:
        """Move a private key still stored in ``issuer_keys`` (before issue 20) into the key file, once, and keep
        only the public halves in the table."""
        rows = [(r[0], r[1]) for r in self._conn.execute("SELECT kid, private_pem FROM issuer_keys "
                                                          "ORDER BY created_at, kid")]
        newest, public = split_legacy(rows)
        if newest is None:
            return
        if self.key_file.read() is None:
            self.key_file.create(*newest)
        with self.transaction():
            for kid, pem in public:
                self._write("UPDATE issuer_keys SET private_pem = ? WHERE kid = ?", (pem, kid))
        self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._conn.execute("VACUUM")  # the private PEM's old pages are not left in the file

    def schema_version(self) -> int:
        row = self._conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    # ------------------------------------------------------------------ statements of sibling stores
    def execute(self, sql: str, params: Sequence[object] = ()) -> sqlite3.Cursor:
        """Run one statement on this database's connection, inside the caller's transaction if one is open: for
        the stores that share this database (e.g. :class:`~forewarn.store.sqlite.tracks.TrackStore`). Values go
        in ``params``, never into ``sql``."""
        return self._conn.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> sqlite3.Cursor:
        """Run one statement once per row of ``rows`` (as :meth:`execute`)."""
        return self._conn.executemany(sql, rows)

    def _write(self, sql: str, params: tuple[object, ...]) -> sqlite3.Cursor:
        with self.transaction():
            return self._conn.execute(sql, params)

    # ------------------------------------------------------------------ parties, agreements, sites
    def put_party(self, party: Party) -> None:
        self._write("INSERT INTO parties(id, doc) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET doc = excluded.doc",
                    (party.id, party.model_dump_json()))

    def _party(self, doc: str) -> Party:
        """The party stored as ``doc``, parsed once per distinct document (a frozen model, so shared safely):
        every read still goes to the table, only the JSON parsing is remembered."""
        party = self._parties.get(doc)
        if party is None:
            party = Party.model_validate_json(doc, context=STORED)
            if len(self._parties) >= 10_000:
                self._parties.clear()
            self._parties[doc] = party
        return party

    def get_party(self, party_id: str) -> Party | None:
        row = self._conn.execute("SELECT doc FROM parties WHERE id = ?", (party_id,)).fetchone()
        return self._party(row[0]) if row else None

    def list_parties(self) -> list[Party]:
        return [self._party(r[0]) for r in self._conn.execute("SELECT doc FROM parties ORDER BY id")]

    def put_agreement(self, agreement: Agreement) -> None:
        with self.transaction():
            self._conn.execute(
                "INSERT INTO agreements(id, doc) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET doc = excluded.doc",
                (agreement.id, agreement.model_dump_json()),
            )
            self._conn.execute("DELETE FROM agreement_parties WHERE agreement_id = ?", (agreement.id,))
            self._conn.executemany("INSERT INTO agreement_parties VALUES (?, ?)",
                                   [(agreement.id, p) for p in agreement.parties])

    def get_agreement(self, agreement_id: str) -> Agreement | None:
        row = self._conn.execute("SELECT doc FROM agreements WHERE id = ?", (agreement_id,)).fetchone()
        return Agreement.model_validate_json(row[0], context=STORED) if row else None

    def list_agreements(self) -> list[Agreement]:
        rows = self._conn.execute("SELECT doc FROM agreements ORDER BY id")
        return [Agreement.model_validate_json(r[0], context=STORED) for r in rows]

    def put_site(self, site: ProtectedSite) -> None:
        self._write(
            "INSERT INTO protected_sites(id, registered_by, doc) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE "
            "SET registered_by = excluded.registered_by, doc = excluded.doc",
            (site.id, site.registered_by, site.model_dump_json()),
        )

    def get_site(self, site_id: str) -> ProtectedSite | None:
        row = self._conn.execute("SELECT doc FROM protected_sites WHERE id = ?", (site_id,)).fetchone()
        return ProtectedSite.model_validate_json(row[0], context=STORED) if row else None

    def list_sites(self) -> list[ProtectedSite]:
        rows = self._conn.execute("SELECT doc FROM protected_sites ORDER BY id")
        return [ProtectedSite.model_validate_json(r[0], context=STORED) for r in rows]

    # ------------------------------------------------------------------ operations
    def add_operation_version(self, operation: Operation, at: datetime) -> None:
        notified = _ts(operation.notified_at) if operation.notified_at else None
        with self.transaction():
            if operation.version == 1:
                self._conn.execute(
                    "INSERT INTO operations(id, party_id, state, version, activity_class, notified_at, updated_at)"
                    " VALUES (?, ?, ?, 1, ?, ?, ?)",
                    (operation.id, operation.party_id, operation.state.value, operation.activity_class, notified,
                     _ts(at)),
                )
            else:
                cur = self._conn.execute(
                    "UPDATE operations SET version = ?, state = ?, activity_class = ?, notified_at = ?, "
                    "updated_at = ? WHERE id = ? AND version = ?",
                    (operation.version, operation.state.value, operation.activity_class, notified, _ts(at),
                     operation.id, operation.version - 1),
                )
                if cur.rowcount != 1:
                    raise LookupError(f"operation {operation.id} is not at version {operation.version - 1}")
            self._conn.execute(
                "INSERT INTO operation_versions(operation_id, version, doc, created_at, start_s, end_s) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (operation.id, operation.version, operation.model_dump_json(), _ts(at),
                 operation.start.timestamp(), operation.end.timestamp()),
            )

    def set_operation_state(self, operation_id: str, state: OperationState, at: datetime,
                            notified_at: datetime | None = None) -> None:
        with self.transaction():
            cur = self._conn.execute(
                "UPDATE operations SET state = ?, updated_at = ?, notified_at = coalesce(?, notified_at) "
                "WHERE id = ?",
                (state.value, _ts(at), _ts(notified_at) if notified_at else None, operation_id),
            )
            if cur.rowcount != 1:
                raise LookupError(f"no operation {operation_id}")

    def _hydrate(self, doc: str, state: str, notified_at: str | None) -> Operation:
        op = Operation.model_validate_json(doc)
        return op.model_copy(update={
            "state": OperationState(state),
            "notified_at": datetime.fromisoformat(notified_at) if notified_at else None,
        })

    def get_operation(self, operation_id: str, version: int | None = None) -> Operation | None:
        row = self._conn.execute(
            "SELECT v.doc, o.state, o.notified_at FROM operations o JOIN operation_versions v "
            "ON v.operation_id = o.id AND v.version = coalesce(?, o.version) WHERE o.id = ?",
            (version, operation_id),
        ).fetchone()
        return self._hydrate(*row) if row else None

    def list_operations(self, states: Sequence[OperationState] | None = None,
                        party_id: str | None = None) -> list[Operation]:
        sql = ("SELECT v.doc, o.state, o.notified_at FROM operations o JOIN operation_versions v "
               "ON v.operation_id = o.id AND v.version = o.version WHERE 1 = 1")
        params: list[object] = []
        if states is not None:
            sql += f" AND o.state IN ({', '.join('?' for _ in states)})"
            params.extend(s.value for s in states)
        if party_id is not None:
            sql += " AND o.party_id = ?"
            params.append(party_id)
        rows = self._conn.execute(sql + " ORDER BY o.id", params)
        return [self._hydrate(*r) for r in rows]

    def operation_versions(self, operation_id: str) -> list[Operation]:
        rows = self._conn.execute(
            "SELECT doc FROM operation_versions WHERE operation_id = ? ORDER BY version", (operation_id,)
        )
        return [Operation.model_validate_json(r[0]) for r in rows]

    def iter_live_operations(self) -> Iterator[Operation]:
        yield from self.list_operations([OperationState.NOTIFIED, OperationState.ACTIVE])

    # ------------------------------------------------------------------ notices
    def add_notice(self, outcome: NoticeOutcome) -> int:
        with self.transaction():
            cur = self._conn.execute(
                "INSERT INTO notices(operation_id, version, party_id, kind, at, outcome) VALUES (?, ?, ?, ?, ?, ?)",
                (outcome.operation_id, outcome.version, outcome.party_id, outcome.kind, _ts(outcome.at), "{}"),
            )
            notice_id = int(cur.lastrowid or 0)
            stored = outcome.model_copy(update={"notice_id": notice_id})
            self._conn.execute("UPDATE notices SET outcome = ? WHERE id = ?", (stored.model_dump_json(), notice_id))
            self._conn.executemany(
                "INSERT INTO conflicts(notice_id, operation_a, operation_b, adjusting_operation, doc) "
                "VALUES (?, ?, ?, ?, ?)",
                [(notice_id, c.a.operation_id, c.b.operation_id, c.adjusting_operation, c.model_dump_json())
                 for c in outcome.conflicts],
            )
            self._conn.executemany(
                "INSERT INTO site_warnings(notice_id, site_id, operation_id, doc) VALUES (?, ?, ?, ?)",
                [(notice_id, w.site_id, w.operation_id, w.model_dump_json()) for w in outcome.site_warnings],
            )
        return notice_id

    def list_notices(self, operation_id: str | None = None) -> list[StoredNotice]:
        sql = "SELECT id, operation_id, version, party_id, kind, at, outcome FROM notices"
        params: tuple[object, ...] = ()
        if operation_id is not None:
            sql += " WHERE operation_id = ?"
            params = (operation_id,)
        rows = self._conn.execute(sql + " ORDER BY id", params)
        return [
            StoredNotice(id=r[0], operation_id=r[1], version=r[2], party_id=r[3], kind=r[4],
                         at=datetime.fromisoformat(r[5]), outcome=NoticeOutcome.model_validate_json(r[6]))
            for r in rows
        ]

    # ------------------------------------------------------------------ credentials, issuer key
    def put_credential(self, credential: Credential) -> None:
        self._write(
            "INSERT INTO credentials(client_id, party_id, doc) VALUES (?, ?, ?) ON CONFLICT(client_id) DO UPDATE "
            "SET doc = excluded.doc",
            (credential.client_id, credential.party_id, credential.model_dump_json()),
        )

    def get_credential(self, client_id: str) -> Credential | None:
        row = self._conn.execute("SELECT doc FROM credentials WHERE client_id = ?", (client_id,)).fetchone()
        return Credential.model_validate_json(row[0]) if row else None

    def list_credentials(self, party_id: str) -> list[Credential]:
        rows = self._conn.execute("SELECT doc FROM credentials WHERE party_id = ? ORDER BY client_id", (party_id,))
        return [Credential.model_validate_json(r[0]) for r in rows]

    def set_party_disabled(self, party_id: str, at: datetime | None) -> None:
        self._write("UPDATE parties SET disabled_at = ? WHERE id = ?", (_opt(at), party_id))

    def party_access(self, party_id: str) -> PartyAccess | None:
        rows = self._conn.execute("SELECT p.disabled_at, c.doc FROM parties p LEFT JOIN credentials c ON "
                                  "c.party_id = p.id WHERE p.id = ?", (party_id,)).fetchall()
        if not rows:
            return None
        disabled = datetime.fromisoformat(rows[0][0]) if rows[0][0] else None
        return PartyAccess(disabled, tuple(Credential.model_validate_json(r[1]) for r in rows if r[1] is not None))

    def get_issuer_key(self) -> tuple[str, str] | None:
        return self.key_file.read()

    def put_issuer_key(self, kid: str, private_pem: str, at: datetime) -> None:
        """Write the key file (FileExistsError if there is one) and record the key's public half."""
        self.key_file.create(kid, private_pem)
        self._write("INSERT INTO issuer_keys(kid, private_pem, created_at) VALUES (?, ?, ?)",
                    (kid, public_pem_of(private_pem), _ts(at)))

    # ------------------------------------------------------------------ deliveries
    _DELIVERY_COLUMNS = (
        "seq, id, notice_id, party_id, channel, reason, escalation_of, payload, created_at, first_sent_at, "
        "delivered_at, acked_at, ack_deadline, escalated_at, attempts, next_attempt_at, last_error, lead_time_s, "
        "min_notice_s, late"
    )

    _INSERT_DELIVERY = (
        "INSERT INTO deliveries(id, notice_id, party_id, channel, reason, escalation_of, payload, created_at,"
        " ack_deadline, next_attempt_at, lead_time_s, min_notice_s, late) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")

    def add_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        """Store deliveries (the outbox); with :attr:`delivery_hooks`, each is inserted with ``RETURNING seq``
        and handed to the hooks with it once the transaction commits."""
        rows = [(d.id, d.notice_id, d.party_id, d.channel, d.reason, d.escalation_of,
                 orjson.dumps(d.payload).decode(), _ts(d.created_at), _opt(d.ack_deadline), _opt(d.next_attempt_at),
                 d.lead_time_s, d.min_notice_s, int(d.late)) for d in deliveries]
        with self.transaction():
            if not self.delivery_hooks:
                self._conn.executemany(self._INSERT_DELIVERY, rows)
                return
            for d, row in zip(deliveries, rows, strict=True):
                seq = int(self._conn.execute(self._INSERT_DELIVERY + " RETURNING seq", row).fetchone()[0])
                self._local.created.append(d.model_copy(update={"seq": seq}))

    _DELIVERY_NAMES = tuple(c.strip() for c in _DELIVERY_COLUMNS.split(","))
    _DELIVERY_STATE_COLUMNS = _DELIVERY_COLUMNS.replace(" payload,", " '{}' AS payload,")

    def _delivery(self, row: tuple[Any, ...]) -> Delivery:
        data = dict(zip(self._DELIVERY_NAMES, row, strict=True))
        data["payload"] = json.loads(data["payload"])
        data["late"] = bool(data["late"])
        return Delivery.model_validate(data)

    def get_delivery(self, delivery_id: str) -> Delivery | None:
        row = self._conn.execute(f"SELECT {self._DELIVERY_COLUMNS} FROM deliveries WHERE id = ?",
                                 (delivery_id,)).fetchone()
        return self._delivery(row) if row else None

    def get_deliveries(self, delivery_ids: Sequence[str], *, payloads: bool = True) -> dict[str, Delivery]:
        out: dict[str, Delivery] = {}
        ids = list(dict.fromkeys(delivery_ids))
        columns = self._DELIVERY_COLUMNS if payloads else self._DELIVERY_STATE_COLUMNS
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ", ".join("?" * len(chunk))
            for row in self._conn.execute(f"SELECT {columns} FROM deliveries WHERE id IN ({marks})", chunk):
                d = self._delivery(row)
                out[d.id] = d
        return out

    def list_deliveries(self, party_id: str | None = None, after_seq: int = 0, channel: str | None = None,
                        limit: int = 1000) -> list[Delivery]:
        sql = f"SELECT {self._DELIVERY_COLUMNS} FROM deliveries WHERE seq > ?"
        params: list[object] = [after_seq]
        if party_id is not None:
            sql += " AND party_id = ?"
            params.append(party_id)
        if channel is not None:
            sql += " AND channel = ?"
            params.append(channel)
        rows = self._conn.execute(sql + " ORDER BY seq LIMIT ?", [*params, limit])
        return [self._delivery(r) for r in rows]

    _UPDATE_DELIVERY = (
        "UPDATE deliveries SET first_sent_at = ?, delivered_at = ?, acked_at = ?, escalated_at = ?, attempts = ?,"
        " next_attempt_at = ?, last_error = ?, lead_time_s = ?, late = ? WHERE id = ?")

    @staticmethod
    def _delivery_state(d: Delivery) -> tuple[object, ...]:
        return (_opt(d.first_sent_at), _opt(d.delivered_at), _opt(d.acked_at), _opt(d.escalated_at), d.attempts,
                _opt(d.next_attempt_at), d.last_error, d.lead_time_s, int(d.late), d.id)

    def update_delivery(self, delivery: Delivery) -> None:
        self._write(self._UPDATE_DELIVERY, self._delivery_state(delivery))

    def update_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        if deliveries:
            with self.transaction():
                self._conn.executemany(self._UPDATE_DELIVERY, [self._delivery_state(d) for d in deliveries])

    def due_webhook_deliveries(self, now: datetime, limit: int = 100) -> list[Delivery]:
        rows = self._conn.execute(
            f"SELECT {self._DELIVERY_COLUMNS} FROM deliveries WHERE delivered_at IS NULL"
            " AND next_attempt_at IS NOT NULL AND next_attempt_at <= ? ORDER BY seq LIMIT ?", (_ts(now), limit))
        return [self._delivery(r) for r in rows]

    def overdue_acknowledgements(self, now: datetime, limit: int = 100) -> list[Delivery]:
        rows = self._conn.execute(
            f"SELECT {self._DELIVERY_COLUMNS} FROM deliveries WHERE channel = 'primary' AND acked_at IS NULL"
            " AND escalated_at IS NULL AND ack_deadline IS NOT NULL AND ack_deadline <= ? ORDER BY seq LIMIT ?",
            (_ts(now), limit))
        return [self._delivery(r) for r in rows]

    # ------------------------------------------------------------------ idempotency, subscriptions
    def get_idempotent(self, party_id: str, key: str) -> tuple[str, int, str] | None:
        row = self._conn.execute(
            "SELECT request_hash, status, response FROM idempotency WHERE party_id = ? AND key = ?", (party_id, key)
        ).fetchone()
        return (row[0], int(row[1]), row[2]) if row else None

    def put_idempotent(self, party_id: str, key: str, request_hash: str, status: int, response: str,
                       at: datetime) -> None:
        self._write("INSERT INTO idempotency VALUES (?, ?, ?, ?, ?, ?)",
                    (party_id, key, request_hash, status, response, _ts(at)))

    def put_subscription(self, subscription: Subscription) -> None:
        self._write("INSERT INTO subscriptions(party_id, id, doc) VALUES (?, ?, ?) ON CONFLICT(party_id, id) DO "
                    "UPDATE SET doc = excluded.doc",
                    (subscription.party_id, subscription.id, subscription.model_dump_json()))

    def delete_subscription(self, subscription_id: str, party_id: str) -> None:
        self._write("DELETE FROM subscriptions WHERE party_id = ? AND id = ?", (party_id, subscription_id))

    def list_subscriptions(self, party_id: str | None = None) -> list[Subscription]:
        if party_id is None:
            rows = self._conn.execute("SELECT doc FROM subscriptions ORDER BY id, party_id")
        else:
            rows = self._conn.execute("SELECT doc FROM subscriptions WHERE party_id = ? ORDER BY id", (party_id,))
        return [Subscription.model_validate_json(r[0]) for r in rows]

    # ------------------------------------------------------------------ the ledger and party keys
    _LEDGER_COLUMNS = ("seq, prev_hash, digest, entry_hash, kind, subject, party_id, at, body, party_signature, "
                       "service_key_id, service_signature")
    _INSERT_LEDGER = f"INSERT INTO ledger_entries({_LEDGER_COLUMNS}, party_nonce) VALUES ({', '.join('?' * 13)})"
    _BODY_FIELD = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")

    def ledger_head(self) -> tuple[int, str] | None:
        """Inside a write transaction the head is read once and then followed through this connection's own
        appends (no other connection can append while ``BEGIN IMMEDIATE`` holds the write lock); outside one,
        it is read every time."""
        depth: int = getattr(self._local, "depth", 0)
        cached: tuple[int, str] | None = getattr(self._local, "head", None)
        if cached is not None and depth:
            return cached
        row = self._conn.execute("SELECT seq, entry_hash FROM ledger_entries ORDER BY seq DESC LIMIT 1").fetchone()
        head = (int(row[0]), str(row[1])) if row else None
        if self._local.depth:
            self._local.head = head
        return head

    def add_ledger_entries(self, entries: Sequence[tuple[LedgerEntry, str]]) -> None:
        """Append entries (each with its body as JSON text, e.g. the canonical form already hashed) in one
        batched INSERT; a reused (party, nonce) of a party signature is refused and none of them is stored."""
        rows = []
        for entry, body_json in entries:
            sig = entry.party_signature
            rows.append((entry.seq, entry.prev_hash, entry.digest, entry.entry_hash, entry.kind, entry.subject,
                         entry.party_id, entry.at, body_json, sig.model_dump_json() if sig else None,
                         entry.service_key_id or "", entry.service_signature or "", sig.nonce if sig else None))
        if not rows:
            return
        # one row is atomic on its own; several roll back together (a savepoint), whatever stopped them
        with self.transaction(), self.savepoint() if len(rows) > 1 else nullcontext():
            try:
                self._conn.executemany(self._INSERT_LEDGER, rows)
            except sqlite3.IntegrityError as exc:
                signed = [e.party_signature for e, _ in entries if e.party_signature is not None]
                if signed and "party_nonce" in str(exc):
                    raise InvalidInput("this signed request was already submitted (nonce reused)",
                                       {"nonce": signed[0].nonce} if len(signed) == 1 else {}) from exc
                raise
            last = entries[-1][0]
            self._local.head = (last.seq, last.entry_hash)

    def _ledger_entry(self, row: tuple[Any, ...]) -> LedgerEntry:
        return LedgerEntry(
            seq=row[0], prev_hash=row[1], digest=row[2], entry_hash=row[3], kind=row[4], subject=row[5],
            party_id=row[6], at=row[7], body=parse_canonical(row[8]),
            party_signature=PartySignature.model_validate_json(row[9]) if row[9] else None,
            service_key_id=row[10] or None, service_signature=row[11] or None,
        )

    def sign_ledger_entry(self, seq: int, service_key_id: str, service_signature: str) -> None:
        """Give entry ``seq`` (appended unsigned in this transaction) its service signature: a checkpoint."""
        self._write("UPDATE ledger_entries SET service_key_id = ?, service_signature = ? WHERE seq = ?",
                    (service_key_id, service_signature, seq))

    def ledger_checkpoint(self, seq: int) -> Link | None:
        """The first signed entry at or after ``seq`` (the checkpoint that covers entry ``seq``), as a link."""
        row = self._conn.execute(
            "SELECT seq, prev_hash, digest, entry_hash, service_key_id, service_signature FROM ledger_entries "
            "WHERE seq >= ? AND service_signature != '' ORDER BY seq LIMIT 1", (seq,)).fetchone()
        return self._link(row) if row else None

    @staticmethod
    def _link(r: tuple[Any, ...]) -> Link:
        return Link(seq=r[0], prev_hash=r[1], digest=r[2], entry_hash=r[3], service_key_id=r[4] or None,
                    service_signature=r[5] or None)

    def iter_ledger(self, after_seq: int = 0, batch: int = 1000) -> Iterator[LedgerEntry]:
        last = after_seq
        while True:
            rows = self._conn.execute(
                f"SELECT {self._LEDGER_COLUMNS} FROM ledger_entries WHERE seq > ? ORDER BY seq LIMIT ?",
                (last, batch)).fetchall()
            for row in rows:
                yield self._ledger_entry(row)
            if len(rows) < batch:
                return
            last = int(rows[-1][0])

    def ledger_entries(self, seqs: Sequence[int]) -> list[LedgerEntry]:
        wanted = sorted(set(seqs))
        out: list[LedgerEntry] = []
        for i in range(0, len(wanted), 500):
            chunk = wanted[i:i + 500]
            rows = self._conn.execute(
                f"SELECT {self._LEDGER_COLUMNS} FROM ledger_entries WHERE seq IN ({', '.join('?' for _ in chunk)})"
                " ORDER BY seq", chunk)
            out.extend(self._ledger_entry(r) for r in rows)
        return out

    def ledger_links(self, first: int, last: int) -> list[Link]:
        rows = self._conn.execute(
            "SELECT seq, prev_hash, digest, entry_hash, service_key_id, service_signature FROM ledger_entries "
            "WHERE seq BETWEEN ? AND ? ORDER BY seq", (first, last))
        return [self._link(r) for r in rows]

    def find_ledger(self, kinds: Sequence[str] | None = None, subject: str | None = None,
                    party_id: str | None = None, body_equals: dict[str, str] | None = None) -> list[LedgerEntry]:
        sql = f"SELECT {self._LEDGER_COLUMNS} FROM ledger_entries WHERE 1 = 1"
        params: list[object] = []
        if kinds is not None:
            sql += f" AND kind IN ({', '.join('?' for _ in kinds)})"
            params.extend(kinds)
        if subject is not None:
            sql += " AND subject = ?"
            params.append(subject)
        if party_id is not None:
            sql += " AND party_id = ?"
            params.append(party_id)
        for name, value in (body_equals or {}).items():
            if not self._BODY_FIELD.match(name):
                raise ValueError(f"bad body field name {name!r}")
            # the path is written literally (the name is checked above) so the expression indexes apply
            sql += f" AND json_extract(body, '$.{name}') = ?"
            params.append(value)
        return [self._ledger_entry(r) for r in self._conn.execute(sql + " ORDER BY seq", params)]

    def ledger_nonce_used(self, party_id: str, nonce: str) -> bool:
        row = self._conn.execute("SELECT 1 FROM ledger_entries WHERE party_id = ? AND party_nonce = ?",
                                 (party_id, nonce)).fetchone()
        return row is not None

    def list_issuer_keys(self) -> list[tuple[str, str]]:
        rows = [(r[0], r[1]) for r in self._conn.execute("SELECT kid, private_pem FROM issuer_keys "
                                                          "ORDER BY created_at, kid")]
        return with_current(rows, self.key_file)

    def put_party_key(self, key: PartyKey) -> None:
        self._write(
            "INSERT INTO party_keys(key_id, party_id, public_key, valid_from, revoked_at, replaces) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(key_id) DO UPDATE SET revoked_at = excluded.revoked_at",
            (key.key_id, key.party_id, key.public_key, _ts(key.valid_from), _opt(key.revoked_at), key.replaces),
        )

    def _party_key(self, row: tuple[Any, ...]) -> PartyKey:
        return PartyKey(key_id=row[0], party_id=row[1], public_key=row[2], valid_from=datetime.fromisoformat(row[3]),
                        revoked_at=datetime.fromisoformat(row[4]) if row[4] else None, replaces=row[5])

    def get_party_key(self, key_id: str) -> PartyKey | None:
        row = self._conn.execute("SELECT key_id, party_id, public_key, valid_from, revoked_at, replaces "
                                 "FROM party_keys WHERE key_id = ?", (key_id,)).fetchone()
        return self._party_key(row) if row else None

    def list_party_keys(self, party_id: str | None = None) -> list[PartyKey]:
        sql = "SELECT key_id, party_id, public_key, valid_from, revoked_at, replaces FROM party_keys"
        params: tuple[object, ...] = ()
        if party_id is not None:
            sql += " WHERE party_id = ?"
            params = (party_id,)
        return [self._party_key(r) for r in self._conn.execute(sql + " ORDER BY party_id, valid_from, key_id", params)]
