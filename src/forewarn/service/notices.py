"""The Forewarn use cases on operations: check, plan, notify, amend, activate, complete, cancel. One transaction
each (filings that arrive together share one: :mod:`forewarn.service.group_commit`, each in its own savepoint),
``now`` injected, never read inside.

The flow of a notice: validate -> detect (index + exact test) -> resolutions for the sides asked to adjust ->
site warnings (:mod:`forewarn.service.evaluation`) -> persist (operation version + notice + conflicts + ledger
entries + the deliveries it owes) -> update the live picture (undone if the COMMIT fails). Filings run either on
the calling thread (``notify``, ``amend``, ...: the first caller to get the lock runs every queued filing) or on
the sequencer thread (``queued(notice_work(...))``: the HTTP routes). A rejected request raises a
:class:`~forewarn.errors.ForewarnError` and stores nothing, except that a rejected party signature is itself
recorded in the ledger.

Every change is appended to the ledger (:mod:`forewarn.ledger`) in the transaction of the change. A party may sign
what it submits (``party_signature``): the signature is checked before anything else and kept with the entry.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Literal, TypeVar

from forewarn.core.airspace import AgreementBook, Airspace
from forewarn.core.deliveries import plan_deliveries
from forewarn.core.model import LIVE_STATES, TRANSITIONS, Operation, OperationState
from forewarn.core.records import Delivery, NoticeOutcome, PartyImpact
from forewarn.errors import InvalidInput, InvalidTransition, NotFound, StaleVersion
from forewarn.geo.volume import Volume4D, check_volume
from forewarn.ledger.canonical import digest
from forewarn.ledger.keys import PartySignature
from forewarn.service import idempotency
from forewarn.service.access import AccessControl
from forewarn.service.client_access import Access
from forewarn.service.evaluation import Undo, evaluate, put_live, remove_live, require_aware
from forewarn.service.group_commit import GroupCommit, Work
from forewarn.service.idempotency import Idempotency
from forewarn.service.ledger import BodyCheck, Ledger
from forewarn.service.reference import field_is
from forewarn.service.replica import Replica
from forewarn.service.settings import Settings
from forewarn.service.submissions import Submission, SubmissionAddress
from forewarn.service.subscriptions import Subscriptions
from forewarn.service.views import Views
from forewarn.store.repository import ChangeLog, DeliveryWakeups, Repository

T = TypeVar("T")

LEDGER_KINDS: dict[str, str] = {"notify": "notice", "amend": "amendment", "cancel": "cancellation",
                                "activate": "activation", "complete": "completion"}
"""The ledger kind of each notice kind."""

TRANSITION_TARGETS: dict[str, OperationState] = {
    "cancel": OperationState.CANCELLED, "activate": OperationState.ACTIVE, "complete": OperationState.COMPLETED,
}

_OPERATION_CORE = ("id", "activity_class", "volumes", "detail")


def _taken(operation_id: str) -> InvalidTransition:
    """The answer to a new operation whose id is already used, by the same party or by another: the same for
    both, naming neither the owner nor the state (operation ids are one namespace: docs/security.md)."""
    return InvalidTransition(f"operation id {operation_id} is not available; choose another",
                             {"operation_id": operation_id})


def _describes(op: Operation) -> BodyCheck:
    """A check that a signed request body (a notice) describes ``op``: same id, activity class, volumes and
    planning detail once parsed as an operation of ``op``'s party."""
    want = op.model_dump(mode="json")

    def check(body: dict[str, Any]) -> str | None:
        try:
            got = Operation.model_validate({**body, "party_id": op.party_id}).model_dump(mode="json")
        except ValueError as exc:
            return f"it is not an operation ({exc.__class__.__name__})"
        differ = [k for k in _OPERATION_CORE if got.get(k) != want.get(k)]
        return f"{', '.join(differ)} differ" if differ else None

    return check


class Forewarn(Views, Subscriptions, Access, AccessControl):
    """The service: a repository, the live airspace rebuilt from it, the writer, and the use cases.
    ``addresses`` says where each signed submission is addressed (needed to accept party signatures)."""

    def __init__(self, repo: Repository, settings: Settings | None = None,
                 addresses: SubmissionAddress | None = None) -> None:
        self.repo = repo
        self.settings = settings or Settings()
        self.commits = GroupCommit(repo)
        self.listeners = self.commits.listeners
        """Called after a commit that created deliveries, with the ids of the parties that got them."""
        self.ledger = Ledger(repo, addresses, self.settings.ledger_summary_period_s)
        """The signed, hash-chained record; ``ledger.append(...)`` joins the caller's transaction."""
        seen = repo.change_head() if isinstance(repo, ChangeLog) else 0  # before loading: see Replica
        # the live picture keeps packed volumes and a small entry per operation; full records load from the store
        self.airspace = Airspace(book=AgreementBook(repo.list_agreements()), loader=repo.get_operation)
        self.airspace.put_many(repo.iter_live_operations())
        if isinstance(repo, ChangeLog):
            self.commits.replica = Replica(repo, self.airspace, seen)

    # ------------------------------------------------------------------ the writer
    def committing(self) -> AbstractContextManager[None]:
        """Hold the writer lock for a block of writes; the listeners hear of announced parties after it."""
        return self.commits.committing()

    def queued(self, work: Work, then: Callable[[NoticeOutcome], T]) -> Future[T]:
        """Queue a filing for the sequencer thread (see :meth:`GroupCommit.queued`)."""
        return self.commits.queued(work, then)

    def after_delivery_commit(self, hook: Callable[[list[Delivery]], None]) -> None:
        """Call ``hook`` with the deliveries of every commit that stored some (commit order, ``seq`` set)."""
        self.repo.delivery_hooks.append(hook)

    def listen_remote_deliveries(self, wakeup: Callable[[int, frozenset[str] | None], None],
                                 ) -> Callable[[], None] | None:
        """With a store shared by several processes: call ``wakeup(head, parties)`` when another process commits
        deliveries; returns the function that stops listening, or None when the store is this process's alone."""
        if not isinstance(self.repo, DeliveryWakeups):
            return None
        return self.repo.listen_deliveries(wakeup)

    def store_version(self) -> int:
        """The store's schema version, read (and the store probed, where it can be) now: a ForewarnError when
        the store cannot be read."""
        probe = getattr(self.repo, "probe", None)
        if probe is not None:
            probe()
        return self.repo.schema_version()

    def close(self) -> None:
        """Close the store's connections (a process handing the database over to other processes)."""
        self.repo.close()

    # ------------------------------------------------------------------ validation
    def validate(self, op: Operation, now: datetime) -> None:
        """Everything a filed operation must satisfy beyond its own model (party, limits, horizon)."""
        require_aware(now)
        if self.repo.get_party(op.party_id) is None:
            raise InvalidInput(f"unknown party {op.party_id}", {"party_id": op.party_id})
        limits = self.settings.volume_limits()
        for i, volume in enumerate(op.volumes):
            check_volume(volume, limits, now, where=f"volumes[{i}]")

    def _evaluate(self, op: Operation, now: datetime, kind: Literal["notify", "amend", "check"]) -> NoticeOutcome:
        return evaluate(op, self.airspace, self.repo.list_sites(), self.settings.resolution_bounds(), now, kind)

    # ------------------------------------------------------------------ persistence of notices
    def _record_notice(self, outcome: NoticeOutcome, op: Operation, now: datetime,
                       party_signature: PartySignature | None = None) -> NoticeOutcome:
        """Inside the caller's transaction: store the notice and the deliveries it owes (the outbox), and their
        ledger entries (the notice's entry commits to the full operation version through its digest)."""
        notice_id = self.repo.add_notice(outcome)
        stored = outcome.model_copy(update={"notice_id": notice_id})
        origin = self.ledger.append(LEDGER_KINDS[outcome.kind], op.id, {
            "notice_id": notice_id, "notice_kind": outcome.kind, "operation_id": op.id, "version": op.version,
            "state": op.state.value, "activity_class": op.activity_class,
            # no window here: a recipient whose view of the times is coarsened holds this entry in its receipt;
            # the digest commits to the exact version (kept by the service and the notifier). No counts of
            # conflicts or site warnings either: they are decided on the exact volumes, and a recipient shown them
            # coarsened could count its probe sites' warnings here (each delivery carries what its party is told)
            "operation_sha256": digest(op.model_dump(mode="json")), "late": outcome.late,
        }, now, party_id=op.party_id, party_signature=party_signature)
        parties = {p.id: p for p in self.repo.list_parties()}
        # only the subscriptions of parties an agreement binds to the filer: nobody else could be told of it
        subscriptions = [s for p in sorted(self.airspace.book.bound_parties(op.party_id))
                         for s in self.repo.list_subscriptions(p)]
        deliveries = plan_deliveries(stored, op, self.airspace.book, parties, subscriptions, now,
                                     airspace=self.airspace, bounds=self.settings.resolution_bounds(),
                                     sites=self.repo.list_sites())
        self.repo.add_deliveries(deliveries)
        self.ledger.record_deliveries(deliveries, origin.seq, now, operation_id=op.id)
        self.commits.announce(d.party_id for d in deliveries)
        return stored

    def replayed(self, idem: Idempotency | None) -> NoticeOutcome | None:
        """The stored result of an earlier request with this Idempotency-Key, if any (see
        :func:`forewarn.service.idempotency.replayed`)."""
        return idempotency.replayed(self.repo, idem)

    def _remember(self, idem: Idempotency | None, status: int, outcome: NoticeOutcome, now: datetime) -> None:
        """Inside the use case's transaction: store the result under the Idempotency-Key."""
        idempotency.remember(self.repo, idem, status, outcome, now)

    def _owned(self, operation_id: str, party_id: str) -> Operation:
        """``party_id``'s operation ``operation_id``; another party's answers exactly as a missing one (hidden
        answers like missing: nothing tells a party that the id exists)."""
        op = self.repo.get_operation(operation_id)
        if op is None or op.party_id != party_id:
            raise NotFound(f"no operation {operation_id}", {"operation_id": operation_id})
        return op

    # ------------------------------------------------------------------ use cases
    def check(self, op: Operation, now: datetime) -> NoticeOutcome:
        """What-if: the conflicts, warnings and resolutions ``op`` would meet if notified now. Stores nothing."""
        with self.commits.reading():
            self.validate(op, now)
            probe = op.model_copy(update={"notified_at": None})
            return self._evaluate(probe, now, "check")

    def plan(self, op: Operation, now: datetime) -> Operation:
        """Store a new operation as planned (private to its party, not in detection)."""
        with self.commits.committing():
            self.validate(op, now)
            if self.repo.get_operation(op.id) is not None:
                raise _taken(op.id)
            stored = op.model_copy(update={"state": OperationState.PLANNED, "version": 1, "notified_at": None})
            with self.repo.transaction():
                self.repo.add_operation_version(stored, now)
            return stored

    def notify(self, op: Operation, now: datetime, idem: Idempotency | None = None,
               party_signature: PartySignature | None = None) -> NoticeOutcome:
        """File a notice: a new operation, or a planned one of the same id, becomes notified at ``now``. A
        ``party_signature`` must be the filing party's, over the notice submission with a body describing
        ``op``. Committed with the filings that arrive meanwhile (:meth:`GroupCommit.run`)."""
        return self.commits.run(self.notice_work(op, now, idem, party_signature))

    def notice_work(self, op: Operation, now: datetime, idem: Idempotency | None = None,
                    party_signature: PartySignature | None = None) -> Work:
        """:meth:`notify` as work for a group commit (:meth:`queued` runs it on the sequencer thread)."""
        require_aware(now)

        def filing(undo: Undo) -> NoticeOutcome:
            replay = self.replayed(idem)
            if replay is not None:
                return replay
            signed = self.ledger.accept(party_signature, op.party_id, Submission("notify", op.id), now,
                                        _describes(op))
            with self.repo.savepoint():
                self.validate(op, now)
                for i, volume in enumerate(op.volumes):
                    if volume.end <= now:
                        raise InvalidInput(f"volumes[{i}]: window ended {volume.end.isoformat()}, before now",
                                           {"field": f"volumes[{i}]"})
                version = self._next_notified_version(op)
                notified = op.model_copy(update={"state": OperationState.NOTIFIED, "notified_at": now,
                                                 "version": version})
                outcome = self._evaluate(notified, now, "notify")
                self.repo.add_operation_version(notified, now)
                outcome = self._record_notice(outcome, notified, now, signed)
                self._remember(idem, 201, outcome, now)
            put_live(self.airspace, notified, undo)
            return outcome

        return filing

    def _next_notified_version(self, op: Operation) -> int:
        """The version a notice of ``op`` gets: 1, or the next of the same party's planned operation."""
        existing = self.repo.get_operation(op.id)
        if existing is None:
            return 1
        if existing.party_id != op.party_id:
            raise _taken(op.id)
        if existing.state != OperationState.PLANNED:
            raise InvalidTransition(
                f"operation {op.id} is {existing.state.value}; amend it instead of notifying it again",
                {"state": existing.state.value, "version": existing.version},
            )
        return existing.version + 1

    def amend(self, operation_id: str, expected_version: int, party_id: str, now: datetime,
              volumes: list[Volume4D] | None = None, changes: dict[str, Any] | None = None,
              idem: Idempotency | None = None, party_signature: PartySignature | None = None) -> NoticeOutcome:
        """A new version of a planned or live operation; ``expected_version`` must be the current one. A
        ``party_signature`` covers the amendment submission with a body naming that version.
        Group-committed like :meth:`notify`."""
        return self.commits.run(self.amendment_work(operation_id, expected_version, party_id, now, volumes,
                                                    changes, idem, party_signature))

    def amendment_work(self, operation_id: str, expected_version: int, party_id: str, now: datetime,
                       volumes: list[Volume4D] | None = None, changes: dict[str, Any] | None = None,
                       idem: Idempotency | None = None, party_signature: PartySignature | None = None) -> Work:
        """:meth:`amend` as work for a group commit."""
        require_aware(now)

        def amendment(undo: Undo) -> NoticeOutcome:
            replay = self.replayed(idem)
            if replay is not None:
                return replay
            signed = self.ledger.accept(party_signature, party_id, Submission("amend", operation_id), now,
                                        field_is("version", expected_version))
            with self.repo.savepoint():
                amended = self._amended(self._owned(operation_id, party_id), expected_version, volumes, changes)
                self.validate(amended, now)
                outcome = self._evaluate(amended, now, "amend")
                self.repo.add_operation_version(amended, now)
                outcome = self._record_notice(outcome, amended, now, signed)
                self._remember(idem, 200, outcome, now)
            if amended.state in LIVE_STATES:
                put_live(self.airspace, amended, undo)
            return outcome

        return amendment

    @staticmethod
    def _amended(current: Operation, expected_version: int, volumes: list[Volume4D] | None,
                 changes: dict[str, Any] | None) -> Operation:
        """The next version of ``current`` with ``volumes`` and ``changes``, if it may be amended at all."""
        if current.state not in (OperationState.PLANNED, *LIVE_STATES):
            raise InvalidTransition(f"operation {current.id} is {current.state.value} and cannot be amended")
        if expected_version != current.version:
            raise StaleVersion(f"operation {current.id} is at version {current.version}, not {expected_version}",
                               {"current_version": current.version})
        update: dict[str, Any] = dict(changes or {})
        if volumes is not None:
            update["volumes"] = volumes
        data = current.model_dump() | update | {"version": current.version + 1}
        try:
            return Operation.model_validate(data)
        except ValueError as exc:
            raise InvalidInput(f"invalid amendment: {exc}") from exc

    def transition_work(self, operation_id: str, party_id: str, now: datetime,
                        kind: Literal["cancel", "activate", "complete"], idem: Idempotency | None = None,
                        party_signature: PartySignature | None = None) -> Work:
        """:meth:`cancel`, :meth:`activate` or :meth:`complete` (``kind``) as work for a group commit."""
        require_aware(now)
        target = TRANSITION_TARGETS[kind]

        def transition(undo: Undo) -> NoticeOutcome:
            replay = self.replayed(idem)
            if replay is not None:
                return replay
            signed = self.ledger.accept(party_signature, party_id, Submission(kind, operation_id), now)
            with self.repo.savepoint():
                current = self._owned(operation_id, party_id)
                if target not in TRANSITIONS[current.state]:
                    raise InvalidTransition(
                        f"operation {operation_id} is {current.state.value}; it cannot become {target.value}",
                        {"state": current.state.value},
                    )
                changed = current.model_copy(update={"state": target})
                outcome = self._transition_outcome(current, kind, target, now)
                self.repo.set_operation_state(current.id, target, now)
                outcome = self._record_notice(outcome, changed, now, signed)
                self._remember(idem, 200, outcome, now)
            if target in LIVE_STATES:
                put_live(self.airspace, changed, undo)
            else:
                remove_live(self.airspace, current.id, undo)
            return outcome

        return transition

    def _transition_outcome(self, current: Operation, kind: Literal["cancel", "activate", "complete"],
                            target: OperationState, now: datetime) -> NoticeOutcome:
        """The notice of a state change: every bound party is informed, nobody is affected."""
        return NoticeOutcome(
            notice_id=None, kind=kind, operation_id=current.id, version=current.version,
            party_id=current.party_id, activity_class=current.activity_class, at=now, lead_times=[],
            conflicts=[], site_warnings=[], resolutions=[], impacts=[
                PartyImpact(party_id=p, affected=False, conflicts=0, asked_to_adjust=[],
                            message=f"informed: {current.id} {target.value}")
                for p in sorted(self.airspace.book.bound_parties(current.party_id))
            ],
        )

    def activate(self, operation_id: str, party_id: str, now: datetime, idem: Idempotency | None = None,
                 party_signature: PartySignature | None = None) -> NoticeOutcome:
        """A notified operation starts flying (signed as an ``activate`` submission)."""
        return self.commits.run(self.transition_work(operation_id, party_id, now, "activate", idem,
                                                     party_signature))

    def complete(self, operation_id: str, party_id: str, now: datetime, idem: Idempotency | None = None,
                 party_signature: PartySignature | None = None) -> NoticeOutcome:
        """An active operation is over; it leaves detection (signed as a ``complete`` submission)."""
        return self.commits.run(self.transition_work(operation_id, party_id, now, "complete", idem,
                                                     party_signature))

    def cancel(self, operation_id: str, party_id: str, now: datetime, idem: Idempotency | None = None,
               party_signature: PartySignature | None = None) -> NoticeOutcome:
        """A planned or live operation is called off; it leaves detection (signed as a ``cancel`` submission)."""
        return self.commits.run(self.transition_work(operation_id, party_id, now, "cancel", idem,
                                                     party_signature))
