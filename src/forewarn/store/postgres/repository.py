"""The PostgreSQL/PostGIS backend of the Repository: one class assembled from the table groups.

See :mod:`forewarn.store.postgres.connection` for transactions, locking and migrations.
"""

from __future__ import annotations

from forewarn.store.postgres.changes import ChangeLogTables
from forewarn.store.postgres.documents import DocumentTables
from forewarn.store.postgres.ledger import LedgerTables
from forewarn.store.postgres.outbox import OutboxTables
from forewarn.store.postgres.wakeups import WakeupChannel


class PostgresRepository(DocumentTables, OutboxTables, LedgerTables, ChangeLogTables,
                         WakeupChannel):
    """The Repository on PostgreSQL (``postgresql://`` URL); PostGIS must be installable in the database (the
    first migration runs ``CREATE EXTENSION IF NOT EXISTS postgis``)."""
