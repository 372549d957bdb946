"""The in-memory airspace as a replica of the store's change log, for several processes on one database.

Each process detects conflicts against its in-memory airspace. With several processes on one PostgreSQL
database, a filing committed by another process is known to this one only through the store's change log
(:class:`forewarn.store.repository.ChangeLog`). The group commit calls :meth:`Replica.catch_up` at the start
of every batch's transaction, after the writer lock is taken: every change committed before (by any process) is
applied first, so detection sees every earlier filing and two conflicting filings at two processes are each
told of the other (no write skew). At the end of the batch, :meth:`Replica.mark_seen` moves the position past
the batch's own changes, which the batch has already put in the airspace.

The log is pruned (:class:`ReplicaKeeper`): every process reports its replica's position periodically and deletes
the rows every replica heard from has applied. A replica that fell behind the pruned rows (its process paused,
or cut off from the database, for longer than the retention, so that the others forgot it) is told so by
:meth:`ChangeLog.changes_since` and reloads the whole live picture under the same lock.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import cast

from forewarn.core.airspace import Airspace
from forewarn.core.model import LIVE_STATES
from forewarn.store.repository import ChangeLog, Repository

log = logging.getLogger("forewarn.replica")


class Replica:
    """Keeps ``airspace`` in step with ``log`` (see module docstring)."""

    def __init__(self, log: ChangeLog, airspace: Airspace, seen: int) -> None:
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        """This replica's name in the store's list of replicas (host, process id, a random part)."""
        self.log = log
        self.airspace = airspace
        self.seen = seen
        """The log position the airspace reflects (read *before* the airspace was loaded: a change committed
        while it loaded is applied again at the first catch-up, which is harmless)."""
        self.applied = 0
        """Changes of other processes applied so far (operations and agreements)."""
        self.reloads = 0
        """Full reloads so far (the log was pruned past :attr:`seen`)."""

    def catch_up(self) -> int:
        """Inside a write transaction (writer lock held): apply every change after :attr:`seen`; the number
        applied."""
        changes = self.log.changes_since(self.seen)
        if not changes.complete:
            return self._reload(changes.head)
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

    def _reload(self, head: int) -> int:
        """The rows after :attr:`seen` were pruned: the live picture as stored now (writer lock held, so as of
        ``head``), applied as changes: every agreement put, operations no longer live removed, the live ones put."""
        repo = cast(Repository, self.log)  # a ChangeLog is always a whole store (PostgresRepository)
        log.warning("replica %s fell behind the pruned change log (at %s, now %s): reloading the live picture",
                    self.id, self.seen, head)
        for agreement in repo.list_agreements():
            self.airspace.book.put(agreement)
        live = {op.id: op for op in repo.iter_live_operations()}
        for gone in [op_id for op_id in self.airspace.operations if op_id not in live]:
            self.airspace.remove(gone)
        for operation in live.values():
            if self.airspace.operations.get(operation.id) != operation:
                self.airspace.put(operation)
        self.seen = head
        self.reloads += 1
        return len(live)

    def mark_seen(self) -> None:
        """At the end of a batch's transaction (writer lock still held): the airspace reflects the log up to its
        head, the batch's own changes included. If the COMMIT then fails, those rows vanish with it and no other
        process can have written meanwhile, so the position stays right."""
        self.seen = self.log.change_head()


class ReplicaKeeper:
    """A daemon thread that, every ``every_s`` seconds, reports the replica's position (a heartbeat) and prunes the
    change log of the rows every replica heard from within ``retention_s`` has applied (see module docstring).
    Pruning is best effort: a failure is logged and tried again at the next round."""

    def __init__(self, replica: Replica, every_s: float, retention_s: float,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.replica, self.every_s, self.clock = replica, every_s, clock
        self.retention = timedelta(seconds=retention_s)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> int:
        """One round: report, then prune; the rows deleted."""
        now = self.clock()
        self.replica.log.report_replica(self.replica.id, self.replica.seen, now)
        return self.replica.log.prune_changes(now, self.retention)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="forewarn-replica-keeper", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                self.tick()
            except Exception:  # the database may be briefly unreachable; the next round tries again
                log.exception("reporting the replica or pruning the change log failed")
            if self._stop.wait(self.every_s):
                return

    def stop(self) -> None:
        """Stop the thread and forget this replica in the store (it no longer holds back pruning)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            self.replica.log.forget_replica(self.replica.id)
        except Exception:
            log.exception("forgetting the replica failed")
