"""The change log of the live picture on PostgreSQL (``live_changes``, migration 5).

A trigger appends ``(seq, kind, key)`` for every insert or update of an operation or an agreement, inside the
writing transaction. Every write transaction holds the writer advisory lock (:mod:`.connection`), so ``seq``
order is commit order, and a transaction that reads the log after taking the lock sees every change committed
before it, in any process. Each service process keeps its in-memory airspace as a replica of this log
(:class:`forewarn.service.replica.Replica`).
"""

from __future__ import annotations

from forewarn.core.model import Agreement
from forewarn.core.text import STORED
from forewarn.store.postgres.connection import PostgresBase
from forewarn.store.postgres.documents import CURRENT_SQL, hydrate
from forewarn.store.repository import LiveChanges


class ChangeLogTables(PostgresBase):
    """Reads of ``live_changes`` (see module docstring)."""

    def change_head(self) -> int:
        """The highest ``seq`` of the change log (0 when empty)."""
        row = self.row("SELECT coalesce(max(seq), 0) FROM live_changes")
        return int(row[0]) if row else 0

    def changes_since(self, seq: int) -> LiveChanges:
        """What changed after ``seq``: the current version and state of every operation and agreement named by a
        later row (each once), and the highest ``seq`` read (``seq`` itself when nothing changed)."""
        rows = self.rows("SELECT seq, kind, key FROM live_changes WHERE seq > %s ORDER BY seq", (seq,))
        if not rows:
            return LiveChanges(head=seq)
        operations = sorted({r[2] for r in rows if r[1] == "operation"})
        agreements = sorted({r[2] for r in rows if r[1] == "agreement"})
        ops = [hydrate(*r) for r in self.rows(CURRENT_SQL + " WHERE o.id = ANY(%s) ORDER BY o.id", (operations,))]
        docs = self.rows("SELECT doc::text FROM agreements WHERE id = ANY(%s) ORDER BY id", (agreements,))
        return LiveChanges(head=int(rows[-1][0]), operations=ops,
                           agreements=[Agreement.model_validate_json(r[0], context=STORED) for r in docs])
