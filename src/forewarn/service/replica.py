"""The in-memory airspace as a replica of the store's change log, for several processes on one database.

Each process detects conflicts against its in-memory airspace. With several processes on one PostgreSQL
database, a filing committed by another process is known to this one only through the store's change log
(:class:`forewarn.store.repository.ChangeLog`). The group commit calls :meth:`Replica.catch_up` at the start
of every batch's transaction, after the writer lock is taken: every change committed before (by any process) is
applied first, so detection sees every earlier filing and two conflicting filings at two processes are each
told of the other (no write skew). At the end of the batch, :meth:`Replica.mark_seen` moves the position past
the batch's own changes, which the batch has already put in the airspace.
"""

from __future__ import annotations

from forewarn.core.airspace import Airspace
from forewarn.core.model import LIVE_STATES
from forewarn.store.repository import ChangeLog


class Replica:
    """Keeps ``airspace`` in step with ``log`` (see module docstring)."""

    def __init__(self, log: ChangeLog, airspace: Airspace, seen: int) -> None:
        self.log = log
        self.airspace = airspace
        self.seen = seen
        """The log position the airspace reflects (read *before* the airspace was loaded: a change committed
        while it loaded is applied again at the first catch-up, which is harmless)."""
        self.applied = 0
        """Changes of other processes applied so far (operations and agreements)."""

    def catch_up(self) -> int:
        """Inside a write transaction (writer lock held): apply every change after :attr:`seen`; the number
        applied."""
        changes = self.log.changes_since(self.seen)
        for agreement in changes.agreements:
            self.airspace.book.put(agreement)
        for operation in changes.operations:
            if operation.state in LIVE_STATES:
                self.airspace.put(operation)
            else:
                self.airspace.remove(operation.id)
        self.seen = changes.head
        count = len(changes.operations) + len(changes.agreements)
        self.applied += count
        return count

    def mark_seen(self) -> None:
        """At the end of a batch's transaction (writer lock still held): the airspace reflects the log up to its
        head, the batch's own changes included. If the COMMIT then fails, those rows vanish with it and no other
        process can have written meanwhile, so the position stays right."""
        self.seen = self.log.change_head()
