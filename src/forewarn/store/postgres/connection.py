"""Connections, transactions and migrations of the PostgreSQL backend.

A pool of autocommit connections (psycopg 3, ``psycopg_pool``). A read outside a transaction borrows a connection
for one statement; :meth:`PostgresBase.transaction` pins one connection to the thread for the whole unit of work,
so reads inside it see its own writes.

One writer at a time, across every process on the database, as on SQLite: a transaction begins by taking a
transaction-level advisory lock (``WRITER_LOCK``, released by COMMIT or ROLLBACK), after an in-process lock so that
waiting writers do not hold pool connections. So a read-check-write use case never interleaves with another,
the ledger stays one gap-free chain (its head is read under the lock) and a delivery's ``seq`` order is its commit
order (a stream resuming after ``seq`` N misses nothing). Read-only calls outside a transaction never wait.

Migrations (``migrations/NNNN_name.sql``) are applied at open, all pending ones in one transaction under another
advisory lock, so several processes starting at once apply each exactly once; ``schema_migrations`` records them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from forewarn.core.records import Delivery

log = logging.getLogger("forewarn.store")

MIGRATE_LOCK = 0x466F_7265_0001
"""Advisory lock key held while migrations are applied."""
WRITER_LOCK = 0x466F_7265_0002
"""Advisory lock key every write transaction holds until it ends (see module docstring)."""

Row = tuple[Any, ...]


def migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of every migration shipped, by version."""
    folder = resources.files("forewarn.store.postgres") / "migrations"
    out = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            out.append((int(entry.name.split("_", 1)[0]), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(out)


def check_url(url: str) -> str:
    """``url`` if it names a PostgreSQL database (``postgresql://`` or ``postgres://``), else ValueError."""
    if not url.startswith(("postgresql://", "postgres://")):
        raise ValueError("a PostgreSQL URL starts with postgresql:// (e.g. postgresql://user@host:5432/forewarn)")
    return url


class PostgresBase:
    """Pool, transactions, savepoints, commit hooks and migrations (see module docstring)."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 8, timeout_s: float = 30.0) -> None:
        if not 1 <= min_size <= max_size:
            raise ValueError(f"pool sizes must satisfy 1 <= min_size <= max_size (got {min_size}, {max_size})")
        self.url = check_url(url)
        self._pool: ConnectionPool[psycopg.Connection[Row]] = ConnectionPool(
            self.url, min_size=min_size, max_size=max_size, timeout=timeout_s, open=False,
            kwargs={"autocommit": True}, configure=self._configure, name="forewarn")
        self._pool.open(wait=True, timeout=timeout_s)
        self._local = threading.local()
        self._lock = threading.RLock()
        self.delivery_hooks: list[Callable[[list[Delivery]], None]] = []
        """Called after each COMMIT that stored deliveries, with them (``seq`` set), in commit order, while the
        in-process writer lock is still held (the event streams' in-memory tail)."""
        try:
            self._migrate()
        except BaseException:
            self._pool.close()
            raise

    @staticmethod
    def _configure(conn: psycopg.Connection[Row]) -> None:
        conn.execute("SET TIME ZONE 'UTC'")

    def close(self) -> None:
        """Close the pool and every connection in it."""
        self._pool.close()

    # ------------------------------------------------------------------ statements
    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Row]]:
        """The thread's transaction connection if one is open, else one borrowed from the pool."""
        conn: psycopg.Connection[Row] | None = getattr(self._local, "conn", None)
        if conn is not None:
            yield conn
            return
        with self._pool.connection() as borrowed:
            yield borrowed

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        """Every row of one statement."""
        with self._connection() as conn:
            return conn.execute(sql, params).fetchall()

    def row(self, sql: str, params: Sequence[object] = ()) -> Row | None:
        """The first row of one statement, or None."""
        with self._connection() as conn:
            return conn.execute(sql, params).fetchone()

    def execute(self, sql: str, params: Sequence[object] = ()) -> int:
        """A write statement in a transaction (the open one, or its own); returns the rows it changed."""
        with self.transaction():
            return self._local.conn.execute(sql, params).rowcount  # type: ignore[no-any-return]

    def execute_many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        """One write statement per row, pipelined, in a transaction (the open one, or its own)."""
        if rows:
            with self.transaction(), self._local.conn.cursor() as cur:
                cur.executemany(sql, rows)

    # ------------------------------------------------------------------ transactions
    @property
    def _depth(self) -> int:
        return getattr(self._local, "depth", 0)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN ... COMMIT on one connection pinned to this thread, holding the writer lock (module docstring);
        nested calls join the outer transaction."""
        with self._lock:
            if self._depth:
                self._local.depth += 1
                try:
                    yield
                finally:
                    self._local.depth -= 1
                return
            with self._pool.connection() as conn:
                self._local.conn, self._local.depth = conn, 1
                self._local.head, self._local.created, self._local.before_commit = None, [], {}
                try:
                    with conn.transaction():
                        conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITER_LOCK,))
                        yield
                        for hook in list(self._local.before_commit.values()):
                            hook()
                        if self._local.created:
                            self.notify_created(conn, self._local.created)
                    created: list[Delivery] = self._local.created
                finally:
                    self._local.conn, self._local.depth = None, 0
                    self._local.head, self._local.created, self._local.before_commit = None, [], {}
            if created:
                self._published(created)

    def notify_created(self, conn: psycopg.Connection[Row], created: list[Delivery]) -> None:
        """Inside the transaction that stored ``created``, just before COMMIT: tell the other processes (see
        :mod:`forewarn.store.postgres.wakeups`); nothing here."""

    def before_commit(self, key: str, hook: Callable[[], None]) -> None:
        """Run ``hook`` at the end of the open transaction, just before its COMMIT (inside it: what it writes
        commits too, and if it raises the transaction rolls back). One hook per ``key`` per transaction."""
        if not self._depth:
            raise RuntimeError("before_commit needs an open transaction")
        self._local.before_commit.setdefault(key, hook)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Inside an open transaction: a SAVEPOINT the block's writes roll back to if it raises (the rest of the
        transaction goes on); the cached ledger head and the deliveries to publish roll back with it."""
        if not self._depth:
            raise RuntimeError("a savepoint needs an open transaction")
        head, created = self._local.head, len(self._local.created)
        try:
            with self._local.conn.transaction():
                yield
        except BaseException:
            self._local.head = head
            del self._local.created[created:]
            raise

    def _published(self, created: list[Delivery]) -> None:
        for hook in list(self.delivery_hooks):
            try:
                hook(created)
            except Exception:  # a listener never undoes a commit; streams fall back to reading the table
                log.exception("delivery hook failed")

    # ------------------------------------------------------------------ schema
    def _migrate(self) -> None:
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                         "name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)")
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            for version, name, script in migrations():
                if version in done:
                    continue
                log.info("applying migration %s", name)
                conn.execute(script.encode())  # several statements, no parameters
                conn.execute("INSERT INTO schema_migrations VALUES (%s, %s, %s)", (version, name, datetime.now(UTC)))

    def schema_version(self) -> int:
        row = self.row("SELECT max(version) FROM schema_migrations")
        return int(row[0] or 0) if row else 0
