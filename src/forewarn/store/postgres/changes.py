"""The change log of the live picture on PostgreSQL (``live_changes``, migration 5).

A trigger appends ``(seq, kind, key)`` for every insert or update of an operation or an agreement, inside the
writing transaction. Every write transaction holds the writer advisory lock (:mod:`.connection`), so ``seq``
order is commit order, and a transaction that reads the log after taking the lock sees every change committed
before it, in any process. Each service process keeps its in-memory airspace as a replica of this log
(:class:`forewarn.service.replica.Replica`).

Pruning (migration 7): each process reports its replica's position with a heartbeat (``live_replicas``);
:meth:`ChangeLogTables.prune_changes` deletes the rows at or below the lowest position of the replicas heard from
within the retention (all rows up to the head when none is), forgets the others, and records the highest position
deleted in ``live_changes_pruned``. A reader asking for changes after a position below it gets an incomplete
answer and reloads the whole live picture instead (a process that was paused or cut off past the retention).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from forewarn.core.model import Agreement
from forewarn.core.text import STORED
from forewarn.store.postgres.connection import PostgresBase
from forewarn.store.postgres.documents import CURRENT_SQL, hydrate
from forewarn.store.repository import LiveChanges


class ChangeLogTables(PostgresBase):
    """Reads of ``live_changes`` (see module docstring)."""

    def change_head(self) -> int:
        """The highest ``seq`` of the change log (the highest position pruned when every row is; 0 when none was
        ever written)."""
        row = self.row("SELECT greatest((SELECT coalesce(max(seq), 0) FROM live_changes), "
                       "(SELECT coalesce(max(through), 0) FROM live_changes_pruned))")
        return int(row[0]) if row else 0

    def report_replica(self, replica_id: str, seen: int, now: datetime) -> None:
        """Record that the replica ``replica_id`` has applied every change up to ``seen`` (its heartbeat at
        ``now``, UTC). Not under the writer lock: a plain upsert outside any write transaction."""
        self.row("INSERT INTO live_replicas (id, seen, heartbeat_at) VALUES (%s, %s, %s) ON CONFLICT (id) DO "
                 "UPDATE SET seen = greatest(live_replicas.seen, excluded.seen), heartbeat_at = excluded.heartbeat_at "
                 "RETURNING seen", (replica_id, seen, now))

    def forget_replica(self, replica_id: str) -> None:
        """Remove the replica's row (its process stops): it no longer holds back pruning."""
        self.row("DELETE FROM live_replicas WHERE id = %s RETURNING id", (replica_id,))

    def prune_changes(self, now: datetime, retention: timedelta) -> int:
        """In one write transaction (writer lock: no catch-up reads meanwhile): forget the replicas not heard from
        since ``now - retention``, delete the rows at or below the lowest position of the others (up to the head
        when there are none), record that position as pruned; the number of rows deleted."""
        with self.transaction():
            self.execute("DELETE FROM live_replicas WHERE heartbeat_at < %s", (now - retention,))
            row = self.row("SELECT min(seen) FROM live_replicas")
            floor = int(row[0]) if row is not None and row[0] is not None else self.change_head()
            deleted = self.execute("DELETE FROM live_changes WHERE seq <= %s", (floor,))
            self.execute("INSERT INTO live_changes_pruned (one, through) VALUES (TRUE, %s) ON CONFLICT (one) "
                         "DO UPDATE SET through = greatest(live_changes_pruned.through, excluded.through)", (floor,))
        return deleted

    def changes_since(self, seq: int) -> LiveChanges:
        """What changed after ``seq``: the current version and state of every operation and agreement named by a
        later row (each once), and the highest ``seq`` read (``seq`` itself when nothing changed)."""
        rows = self.rows(  # one round trip: the rows, and a marker row first if rows after seq were pruned
            "SELECT * FROM (SELECT -1 AS seq, 'pruned' AS kind, '' AS key FROM live_changes_pruned WHERE through > %s "
            "UNION ALL SELECT seq, kind, key FROM live_changes WHERE seq > %s) AS u ORDER BY seq", (seq, seq))
        if rows and rows[0][1] == "pruned":
            return LiveChanges(head=self.change_head(), complete=False)
        if not rows:
            return LiveChanges(head=seq)
        operations = sorted({r[2] for r in rows if r[1] == "operation"})
        agreements = sorted({r[2] for r in rows if r[1] == "agreement"})
        ops = [hydrate(*r) for r in self.rows(CURRENT_SQL + " WHERE o.id = ANY(%s) ORDER BY o.id", (operations,))]
        docs = self.rows("SELECT doc::text FROM agreements WHERE id = ANY(%s) ORDER BY id", (agreements,))
        return LiveChanges(head=int(rows[-1][0]), operations=ops,
                           agreements=[Agreement.model_validate_json(r[0], context=STORED) for r in docs])
