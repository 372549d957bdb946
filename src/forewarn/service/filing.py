"""Use cases: one transaction each (filings that arrive together share one: group commit, each in its own
savepoint), ``now`` injected, never read inside.

The flow of a notice: validate -> detect (index + exact test) -> resolutions for the sides asked to adjust ->
site warnings -> persist (operation version + notice + conflicts + ledger entries) -> update the live picture
(undone if the COMMIT fails). Filings run either on the calling thread (``notify``, ``amend``, ...: the first
caller to get the lock runs every queued filing) or on the sequencer thread (``queued(notice_work(...))``: the HTTP
routes). A rejected request raises a :class:`~forewarn.errors.ForewarnError` and stores nothing, except that a
rejected party signature is itself recorded in the ledger.

Every change is appended to the ledger (:mod:`forewarn.ledger`) in the transaction of the change: notices,
amendments, cancellations, activations, completions, site registrations, agreements, deliveries (created, sent,
delivered, failed attempts), acknowledgements and escalations. A party may sign what it submits
(``party_signature``): the signature is checked before anything else and kept with the entry.
"""

from __future__ import annotations

import gc
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar

from forewarn.core.airspace import AgreementBook, Airspace
from forewarn.core.conflicts import Conflict, detect
from forewarn.core.deliveries import plan_deliveries
from forewarn.core.model import (
    LIVE_STATES,
    TRANSITIONS,
    Agreement,
    Operation,
    OperationState,
    Party,
    ProtectedSite,
)
from forewarn.core.policy import can_see
from forewarn.core.records import Delivery, LeadTime, NoticeKind, NoticeOutcome, PartyImpact
from forewarn.core.resolutions import ResolutionSet, propose
from forewarn.core.sites import SiteWarning, site_warnings
from forewarn.errors import Forbidden, InvalidInput, InvalidTransition, NotFound, StaleVersion
from forewarn.geo.volume import Volume4D, check_volume
from forewarn.ledger.canonical import digest
from forewarn.ledger.keys import PartySignature
from forewarn.service.ledger import BodyCheck, Draft, Ledger
from forewarn.service.settings import Settings
from forewarn.service.webhook_urls import check_party_webhooks
from forewarn.store.repository import Repository


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise InvalidInput("now must be a timezone-aware UTC time")


LEDGER_KINDS: dict[str, str] = {"notify": "notice", "amend": "amendment", "cancel": "cancellation",
                                "activate": "activation", "complete": "completion"}
"""The ledger kind of each notice kind."""

_OPERATION_CORE = ("id", "activity_class", "volumes", "detail")


def _describes(op: Operation) -> BodyCheck:
    """A check that a signed request body (``POST /v1/operations``) describes ``op``: same id, activity class,
    volumes and planning detail once parsed as an operation of ``op``'s party."""
    want = op.model_dump(mode="json")

    def check(body: dict[str, Any]) -> str | None:
        try:
            got = Operation.model_validate({**body, "party_id": op.party_id}).model_dump(mode="json")
        except ValueError as exc:
            return f"it is not an operation ({exc.__class__.__name__})"
        differ = [k for k in _OPERATION_CORE if got.get(k) != want.get(k)]
        return f"{', '.join(differ)} differ" if differ else None

    return check


def _field_is(name: str, value: object) -> BodyCheck:
    def check(body: dict[str, Any]) -> str | None:
        return None if body.get(name) == value else f"its {name} is {body.get(name)!r}, not {value!r}"

    return check


@dataclass(frozen=True)
class Idempotency:
    """An Idempotency-Key of a party's request and the hash of that request (method, path, body)."""

    party_id: str
    key: str
    request_hash: str


GROUP_COMMIT_MAX = 64
"""The most filings one group commit runs in one transaction."""

FREEZE_EVERY = 100
"""After this many filings, the objects alive (mostly the live picture's new operations) are moved out of the
cyclic garbage collector's reach (``gc.freeze``): see :meth:`Forewarn._keep_collector_pauses_short`."""


T = TypeVar("T")

Work = Callable[[list[Callable[[], None]]], NoticeOutcome]
"""A filing as a group commit runs it: called inside the batch's transaction with the batch's undo list (steps
that restore the live picture if the COMMIT fails)."""

TRANSITION_TARGETS: dict[str, OperationState] = {
    "cancel": OperationState.CANCELLED, "activate": OperationState.ACTIVE, "complete": OperationState.COMPLETED,
}


@dataclass(eq=False)
class _Job:
    """A filing waiting for (or done by) a group commit: ``work`` runs inside the batch's transaction; ``then``
    (queued filings only) runs after the COMMIT, still under the service lock, and ``future`` gets its result."""

    work: Work
    done: bool = False
    outcome: NoticeOutcome | None = None
    error: BaseException | None = None
    then: Callable[[NoticeOutcome], Any] | None = None
    future: Future[Any] | None = None

    def answer(self) -> None:
        """A queued filing, after its batch: its future gets ``then(outcome)``, or the error (its own, the
        batch's COMMIT's, or the view's: a filing whose view failed is stored all the same)."""
        assert self.future is not None and self.then is not None
        if self.error is not None:
            self.future.set_exception(self.error)
            return
        assert self.outcome is not None
        try:
            self.future.set_result(self.then(self.outcome))
        except Exception as exc:
            self.future.set_exception(exc)


class Forewarn:
    """The service: a repository, the live airspace rebuilt from it, and the use cases."""

    def __init__(self, repo: Repository, settings: Settings | None = None) -> None:
        self.repo = repo
        self.settings = settings or Settings()
        self._lock = threading.RLock()
        self.listeners: list[Callable[[frozenset[str]], None]] = []
        """Called after a commit that created deliveries, with the ids of the parties that got them."""
        self._pending: set[str] = set()
        self._queue: deque[_Job] = deque()
        """Filings waiting for a group commit (:meth:`_group_commit`)."""
        self._queue_lock = threading.Lock()
        self._queued = threading.Condition(self._queue_lock)
        self._sequencer: threading.Thread | None = None
        self._since_freeze = 0
        self.ledger = Ledger(repo)
        """The signed, hash-chained record; ``ledger.append(...)`` joins the caller's transaction."""
        self.airspace = Airspace(book=AgreementBook(repo.list_agreements()))
        self.airspace.put_many(repo.iter_live_operations())

    # ------------------------------------------------------------------ reference data
    def put_party(self, party: Party) -> None:
        """Create or update a party; its webhook URLs must pass the webhook policy (service.webhook_urls)."""
        check_party_webhooks(party, self.settings)
        with self._lock, self.repo.transaction():
            self.repo.put_party(party)

    def put_agreement(self, agreement: Agreement, now: datetime | None = None) -> None:
        """Create or update an agreement; every party it names must exist. Recorded in the ledger at ``now``
        (default: the system clock, for callers that manage reference data without a clock)."""
        at = now or datetime.now(UTC)
        with self._lock:
            missing = [p for p in agreement.parties if self.repo.get_party(p) is None]
            if missing:
                raise InvalidInput(f"agreement {agreement.id} names unknown parties: {', '.join(missing)}",
                                   {"unknown_parties": missing})
            with self.repo.transaction():
                self.repo.put_agreement(agreement)
                self.ledger.append("agreement", agreement.id, agreement.model_dump(mode="json"), at)
            self.airspace.book.put(agreement)

    def register_site(self, site: ProtectedSite, now: datetime | None = None,
                      party_signature: PartySignature | None = None) -> None:
        """Register (or update) a protected site; its registering party must exist. Every party an agreement
        binds to the registrant gets a delivery of the site (to acknowledge, escalated like notices); all of it
        is recorded in the ledger at ``now`` (default: the system clock)."""
        at = now or datetime.now(UTC)
        _require_aware(at)
        with self._lock:
            if self.repo.get_party(site.registered_by) is None:
                raise InvalidInput(f"protected site {site.id}: unknown party {site.registered_by}",
                                   {"registered_by": site.registered_by})
            signed = self.ledger.accept(party_signature, site.registered_by, "POST", "/v1/sites", at, site.id,
                                        _field_is("id", site.id))
            with self.repo.transaction():
                self.repo.put_site(site)
                origin = self.ledger.append("site_registration", site.id, {
                    "site_id": site.id, "site": site.model_dump(mode="json")}, at, party_id=site.registered_by,
                    party_signature=signed)
                deliveries = self._site_deliveries(site, at)
                self.repo.add_deliveries(deliveries)
                self._ledger_deliveries(deliveries, origin.seq, at, site_id=site.id)
                self._pending.update(d.party_id for d in deliveries)
            self._after_commit()

    def _site_deliveries(self, site: ProtectedSite, now: datetime) -> list[Delivery]:
        """One delivery of a site registration to each party bound to the registrant (what ``GET /v1/sites``
        shows them), with the strictest acknowledgement deadline of the agreements binding the two."""
        book = self.airspace.book
        parties = {p.id: p for p in self.repo.list_parties()}
        out: list[Delivery] = []
        for party_id in sorted(book.bound_parties(site.registered_by)):
            if party_id not in parties or not can_see(party_id, site.registered_by, book):
                continue
            ack_s = min((a.ack_deadline_s for a in book.binding(party_id, site.registered_by)), default=None)
            out.append(Delivery(
                id=str(uuid.uuid4()), notice_id=None, party_id=party_id, reason="site",
                payload={"type": "site_registration", "at": now.isoformat(), "from_party": site.registered_by,
                         "site": site.model_dump(mode="json")},
                created_at=now, ack_deadline=now + timedelta(seconds=ack_s) if ack_s is not None else None,
                next_attempt_at=now if parties[party_id].webhook_url else None,
            ))
        return out

    def _ledger_deliveries(self, deliveries: list[Delivery], origin_seq: int, now: datetime,
                           operation_id: str | None = None, site_id: str | None = None) -> None:
        """Inside the caller's transaction: one ``delivery_created`` entry per delivery, with what it shows."""
        self.ledger.append_many([Draft("delivery_created", d.id, {
            "delivery_id": d.id, "notice_id": d.notice_id, "origin_seq": origin_seq, "operation_id": operation_id,
            "site_id": site_id, "channel": d.channel, "reason": d.reason, "escalation_of": d.escalation_of,
            "ack_deadline": d.ack_deadline, "lead_time_s": d.lead_time_s, "late": d.late, "payload": d.payload,
        }, d.party_id) for d in deliveries], now)

    def record_disclosure(self, viewer: str, operation_id: str, view: dict[str, Any], now: datetime, via: str,
                          ) -> None:
        """Record that ``viewer`` was shown ``view`` of an operation through a read path ``via`` (e.g. "GET
        /v1/operations/ID", "export"): its own transaction. Read paths that release planning detail call it."""
        _require_aware(now)
        with self.repo.transaction():
            self.ledger.append("disclosure", operation_id, {"operation_id": operation_id, "via": via, "view": view},
                               now, party_id=viewer)

    # ------------------------------------------------------------------ validation
    def validate(self, op: Operation, now: datetime) -> None:
        """Everything a filed operation must satisfy beyond its own model (party, limits, horizon)."""
        _require_aware(now)
        if self.repo.get_party(op.party_id) is None:
            raise InvalidInput(f"unknown party {op.party_id}", {"party_id": op.party_id})
        limits = self.settings.volume_limits()
        for i, volume in enumerate(op.volumes):
            check_volume(volume, limits, now, where=f"volumes[{i}]")

    # ------------------------------------------------------------------ evaluation
    @contextmanager
    def _tentatively(self, op: Operation) -> Iterator[None]:
        """Put ``op`` in the live picture for the duration of the block, then restore what was there."""
        previous = self.airspace.operations.get(op.id)
        self.airspace.put(op)
        try:
            yield
        finally:
            self._restore(op.id, previous)

    def _evaluate(self, op: Operation, now: datetime, kind: NoticeKind | Literal["check"]) -> NoticeOutcome:
        conflicts = detect(op, self.airspace, now)
        warnings = site_warnings(op, self.repo.list_sites(), self.airspace.book)
        resolutions = self._resolutions(op, conflicts, now)
        return NoticeOutcome(
            notice_id=None, kind=kind,
            operation_id=op.id, version=op.version, party_id=op.party_id, activity_class=op.activity_class,
            at=now, lead_times=self._lead_times(op, now), conflicts=conflicts, site_warnings=warnings,
            resolutions=resolutions, impacts=self._impacts(op, conflicts, warnings),
        )

    def _resolutions(self, op: Operation, conflicts: list[Conflict], now: datetime) -> list[ResolutionSet]:
        bounds = self.settings.resolution_bounds()
        adjusting = list(dict.fromkeys(c.adjusting_operation for c in conflicts))
        out: list[ResolutionSet] = []
        if op.id in adjusting:
            out.append(propose(op, self.airspace, now, bounds))
        others = [a for a in adjusting if a != op.id]
        if others:
            with self._tentatively(op):
                for other_id in others:
                    out.append(propose(self.airspace.operations[other_id], self.airspace, now, bounds))
        return out

    def _lead_times(self, op: Operation, now: datetime) -> list[LeadTime]:
        lead = (op.start - now).total_seconds()
        return [
            LeadTime(agreement_id=ag.id, lead_time_s=lead, min_notice_s=ag.min_notice_s, late=lead < ag.min_notice_s)
            for ag in self.airspace.book if op.party_id in ag.parties
        ]

    def _impacts(self, op: Operation, conflicts: list[Conflict], warnings: list[SiteWarning]) -> list[PartyImpact]:
        out: list[PartyImpact] = []
        for party in sorted(self.airspace.book.bound_parties(op.party_id)):
            mine = [c for c in conflicts if c.b.party_id == party]
            adjust = sorted({c.adjusting_operation for c in mine if c.adjusting_operation != op.id})
            sites = [w for w in warnings if w.registered_by == party]
            if not mine:
                message = "not affected: no adjustment needed"
            elif adjust:
                message = f"affected: {len(mine)} conflict(s); asked to adjust {', '.join(adjust)}"
            else:
                message = f"affected: {len(mine)} conflict(s); {op.id} is asked to adjust, no adjustment needed here"
            if sites:
                message = (f"{len(sites)} protected-site warning(s) on its registered sites; "
                           + ("no airspace conflict" if not mine else message))
            out.append(PartyImpact(party_id=party, affected=bool(mine) or bool(sites), conflicts=len(mine),
                                   asked_to_adjust=adjust, message=message))
        return out

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
            # the digest commits to the exact version (kept by the service and the notifier)
            "operation_sha256": digest(op.model_dump(mode="json")), "conflicts": len(outcome.conflicts),
            "site_warnings": len(outcome.site_warnings), "late": outcome.late,
        }, now, party_id=op.party_id, party_signature=party_signature)
        parties = {p.id: p for p in self.repo.list_parties()}
        deliveries = plan_deliveries(stored, op, self.airspace.book, parties, self.repo.list_subscriptions(), now,
                                     airspace=self.airspace, bounds=self.settings.resolution_bounds())
        self.repo.add_deliveries(deliveries)
        self._ledger_deliveries(deliveries, origin.seq, now, operation_id=op.id)
        self._pending.update(d.party_id for d in deliveries)
        return stored

    def replayed(self, idem: Idempotency | None) -> NoticeOutcome | None:
        """The stored result of an earlier request with this Idempotency-Key, if any; the same key with a
        different request is refused."""
        if idem is None:
            return None
        stored = self.repo.get_idempotent(idem.party_id, idem.key)
        if stored is None:
            return None
        request_hash, _, body = stored
        if request_hash != idem.request_hash:
            raise InvalidInput("this Idempotency-Key was already used for a different request",
                               {"idempotency_key": idem.key})
        return NoticeOutcome.model_validate_json(body)

    def _remember(self, idem: Idempotency | None, status: int, outcome: NoticeOutcome, now: datetime) -> None:
        """Inside the use case's transaction: store the result under the Idempotency-Key."""
        if idem is not None:
            self.repo.put_idempotent(idem.party_id, idem.key, idem.request_hash, status, outcome.model_dump_json(),
                                     now)

    def _after_commit(self) -> None:
        """Tell listeners (event streams, the sender) which parties got deliveries in the last commit."""
        if self._pending:
            parties, self._pending = frozenset(self._pending), set()
            for listener in list(self.listeners):
                listener(parties)

    # ------------------------------------------------------------------ group commit
    def _live(self, op: Operation, undo: list[Callable[[], None]]) -> None:
        """Put ``op`` in the live picture now (later filings of the batch must see it); ``undo`` restores
        what was there if the batch's COMMIT fails."""
        previous = self.airspace.operations.get(op.id)
        self.airspace.put(op)
        undo.append(lambda: self._restore(op.id, previous))

    def _live_remove(self, operation_id: str, undo: list[Callable[[], None]]) -> None:
        previous = self.airspace.operations.get(operation_id)
        self.airspace.remove(operation_id)
        undo.append(lambda: self._restore(operation_id, previous))

    def _restore(self, operation_id: str, previous: Operation | None) -> None:
        self.airspace.remove(operation_id)
        if previous is not None:
            self.airspace.put(previous)

    def _group_commit(self, work: Work) -> NoticeOutcome:
        """Run ``work`` in a transaction shared with the filings (notices, amendments, transitions) queued
        meanwhile, and return its outcome or raise its error.

        Flat combining: the request is queued, then its thread takes the service lock; if another thread's
        batch has already run it, the answer is there; otherwise this thread runs every queued filing (at most
        :data:`GROUP_COMMIT_MAX`) one after another in one ``BEGIN IMMEDIATE ... COMMIT``, each inside its own
        savepoint. The order stays serial (each filing's detection sees the filings before it: no write
        skew), a rejected filing rolls back to its savepoint alone (a rejected party signature stays recorded),
        and BEGIN/COMMIT, the WAL write and the after-commit wake-ups are paid once per batch. No filing is
        answered before the COMMIT that stores it; if the COMMIT fails, every filing of the batch fails with
        its error and the live picture is restored."""
        job = _Job(work)
        with self._queue_lock:
            self._queue.append(job)
        with self._lock:
            while not job.done:  # more than GROUP_COMMIT_MAX queued ahead of it: batches until it has run
                self._run_batch()
        if job.error is not None:
            raise job.error
        assert job.outcome is not None
        return job.outcome

    def queued(self, work: Work, then: Callable[[NoticeOutcome], T]) -> Future[T]:
        """Queue ``work`` for the sequencer thread and return a future of ``then(outcome)``, computed after the
        COMMIT under the service lock (the caller's view of the outcome). For the event loop: no thread-pool
        hand-off per request, and one thread runs the batches instead of one per waiting request. The same
        queue as :meth:`_group_commit`, so direct calls and queued ones are batched together."""
        future: Future[T] = Future()
        job = _Job(work, then=then, future=future)
        with self._queue_lock:
            self._queue.append(job)
            if self._sequencer is None or not self._sequencer.is_alive():
                self._sequencer = threading.Thread(target=self._sequence, name="forewarn-sequencer", daemon=True)
                self._sequencer.start()
            self._queued.notify()
        return future

    def _sequence(self) -> None:
        """The sequencer thread: run batches while filings are queued; end after a second with none (the next
        :meth:`queued` starts another)."""
        while True:
            with self._queue_lock:
                if not self._queued.wait_for(lambda: bool(self._queue), timeout=1.0):
                    self._sequencer = None
                    return
            with self._lock:
                self._run_batch()

    def _run_batch(self) -> None:
        """Holding the service lock: run the queued filings in one transaction (see :meth:`_group_commit`)."""
        with self._queue_lock:
            batch = [self._queue.popleft() for _ in range(min(len(self._queue), GROUP_COMMIT_MAX))]
        if not batch:  # a caller's flat combining drained the queue first
            return
        undo: list[Callable[[], None]] = []
        try:
            with self.repo.transaction():
                for job in batch:
                    try:
                        job.outcome = job.work(undo)
                    except Exception as exc:  # the filing's own error, raised in its own thread
                        job.error = exc
        except BaseException as exc:
            for step in reversed(undo):
                step()
            for job in batch:
                if job.error is None:
                    job.error, job.outcome = exc, None
        finally:
            for job in batch:
                job.done = True
                if job.future is not None:
                    job.answer()
        self._after_commit()
        self._keep_collector_pauses_short(len(batch))

    def _keep_collector_pauses_short(self, filings: int) -> None:
        """Every :data:`FREEZE_EVERY` filings, ``gc.freeze()``. A full (generation 2) collection walks every
        tracked object and stops every thread meanwhile: with 10,000 operations filed since start it took
        115-196 ms, found no garbage (measured), and was the tail of the delivery latency. The live picture is
        frozen once when loaded (:meth:`Airspace.put_many`); freezing again as it grows keeps each full
        collection to the objects of the last hundred filings (about 5 ms). Objects frozen still go when their last
        reference does; only a reference cycle alive at the moment of a freeze and dropped later is never
        reclaimed (the collections above found none)."""
        self._since_freeze += filings
        if self._since_freeze >= FREEZE_EVERY:
            self._since_freeze = 0
            gc.freeze()

    # ------------------------------------------------------------------ use cases
    def check(self, op: Operation, now: datetime) -> NoticeOutcome:
        """What-if: the conflicts, warnings and resolutions ``op`` would meet if notified now. Stores nothing."""
        with self._lock:
            self.validate(op, now)
            probe = op.model_copy(update={"notified_at": None})
            return self._evaluate(probe, now, "check")

    def plan(self, op: Operation, now: datetime) -> Operation:
        """Store a new operation as planned (private to its party, not in detection)."""
        with self._lock:
            self.validate(op, now)
            if self.repo.get_operation(op.id) is not None:
                raise InvalidInput(f"operation {op.id} already exists", {"operation_id": op.id})
            stored = op.model_copy(update={"state": OperationState.PLANNED, "version": 1, "notified_at": None})
            with self.repo.transaction():
                self.repo.add_operation_version(stored, now)
            return stored

    def notify(self, op: Operation, now: datetime, idem: Idempotency | None = None,
               party_signature: PartySignature | None = None) -> NoticeOutcome:
        """File a notice: a new operation, or a planned one of the same id, becomes notified at ``now``. A
        ``party_signature`` must be the filing party's, over ``POST /v1/operations`` with a body describing
        ``op``. Committed with the filings that arrive meanwhile (:meth:`_group_commit`)."""
        return self._group_commit(self.notice_work(op, now, idem, party_signature))

    def notice_work(self, op: Operation, now: datetime, idem: Idempotency | None = None,
                    party_signature: PartySignature | None = None) -> Work:
        """:meth:`notify` as work for a group commit (:meth:`queued` runs it on the sequencer thread)."""
        _require_aware(now)

        def filing(undo: list[Callable[[], None]]) -> NoticeOutcome:
            replay = self.replayed(idem)
            if replay is not None:
                return replay
            signed = self.ledger.accept(party_signature, op.party_id, "POST", "/v1/operations", now, op.id,
                                        _describes(op))
            with self.repo.savepoint():
                self.validate(op, now)
                for i, volume in enumerate(op.volumes):
                    if volume.end <= now:
                        raise InvalidInput(f"volumes[{i}]: window ended {volume.end.isoformat()}, before now",
                                           {"field": f"volumes[{i}]"})
                existing = self.repo.get_operation(op.id)
                if existing is not None:
                    if existing.party_id != op.party_id:
                        raise Forbidden(f"operation {op.id} belongs to another party")
                    if existing.state != OperationState.PLANNED:
                        raise InvalidTransition(
                            f"operation {op.id} is {existing.state.value}; amend it instead of notifying it again",
                            {"state": existing.state.value, "version": existing.version},
                        )
                version = 1 if existing is None else existing.version + 1
                notified = op.model_copy(update={"state": OperationState.NOTIFIED, "notified_at": now,
                                                 "version": version})
                outcome = self._evaluate(notified, now, "notify")
                self.repo.add_operation_version(notified, now)
                outcome = self._record_notice(outcome, notified, now, signed)
                self._remember(idem, 201, outcome, now)
            self._live(notified, undo)
            return outcome

        return filing

    def _owned(self, operation_id: str, party_id: str) -> Operation:
        op = self.repo.get_operation(operation_id)
        if op is None:
            raise NotFound(f"no operation {operation_id}", {"operation_id": operation_id})
        if op.party_id != party_id:
            raise Forbidden(f"operation {operation_id} belongs to another party", {"operation_id": operation_id})
        return op

    def amend(self, operation_id: str, expected_version: int, party_id: str, now: datetime,
              volumes: list[Volume4D] | None = None, changes: dict[str, Any] | None = None,
              idem: Idempotency | None = None, party_signature: PartySignature | None = None) -> NoticeOutcome:
        """A new version of a planned or live operation; ``expected_version`` must be the current one. A
        ``party_signature`` covers ``POST /v1/operations/ID/amend`` with a body naming that version.
        Group-committed like :meth:`notify`."""
        return self._group_commit(self.amendment_work(operation_id, expected_version, party_id, now, volumes,
                                                      changes, idem, party_signature))

    def amendment_work(self, operation_id: str, expected_version: int, party_id: str, now: datetime,
                       volumes: list[Volume4D] | None = None, changes: dict[str, Any] | None = None,
                       idem: Idempotency | None = None, party_signature: PartySignature | None = None) -> Work:
        """:meth:`amend` as work for a group commit."""
        _require_aware(now)

        def amendment(undo: list[Callable[[], None]]) -> NoticeOutcome:
            replay = self.replayed(idem)
            if replay is not None:
                return replay
            signed = self.ledger.accept(party_signature, party_id, "POST", f"/v1/operations/{operation_id}/amend",
                                        now, operation_id, _field_is("version", expected_version))
            with self.repo.savepoint():
                current = self._owned(operation_id, party_id)
                if current.state not in (OperationState.PLANNED, *LIVE_STATES):
                    raise InvalidTransition(
                        f"operation {operation_id} is {current.state.value} and cannot be amended")
                if expected_version != current.version:
                    raise StaleVersion(
                        f"operation {operation_id} is at version {current.version}, not {expected_version}",
                        {"current_version": current.version},
                    )
                update: dict[str, Any] = dict(changes or {})
                if volumes is not None:
                    update["volumes"] = volumes
                data = current.model_dump() | update | {"version": current.version + 1}
                try:
                    amended = Operation.model_validate(data)
                except ValueError as exc:
                    raise InvalidInput(f"invalid amendment: {exc}") from exc
                self.validate(amended, now)
                outcome = self._evaluate(amended, now, "amend")
                self.repo.add_operation_version(amended, now)
                outcome = self._record_notice(outcome, amended, now, signed)
                self._remember(idem, 200, outcome, now)
            if amended.state in LIVE_STATES:
                self._live(amended, undo)
            return outcome

        return amendment

    def transition_work(self, operation_id: str, party_id: str, now: datetime,
                        kind: Literal["cancel", "activate", "complete"], idem: Idempotency | None = None,
                        party_signature: PartySignature | None = None) -> Work:
        """:meth:`cancel`, :meth:`activate` or :meth:`complete` (``kind``) as work for a group commit."""
        _require_aware(now)
        target = TRANSITION_TARGETS[kind]

        def transition(undo: list[Callable[[], None]]) -> NoticeOutcome:
            replay = self.replayed(idem)
            if replay is not None:
                return replay
            signed = self.ledger.accept(party_signature, party_id, "POST", f"/v1/operations/{operation_id}/{kind}",
                                        now, operation_id)
            with self.repo.savepoint():
                current = self._owned(operation_id, party_id)
                if target not in TRANSITIONS[current.state]:
                    raise InvalidTransition(
                        f"operation {operation_id} is {current.state.value}; it cannot become {target.value}",
                        {"state": current.state.value},
                    )
                changed = current.model_copy(update={"state": target})
                outcome = NoticeOutcome(
                    notice_id=None, kind=kind, operation_id=current.id, version=current.version,
                    party_id=current.party_id, activity_class=current.activity_class, at=now, lead_times=[],
                    conflicts=[], site_warnings=[], resolutions=[], impacts=[
                        PartyImpact(party_id=p, affected=False, conflicts=0, asked_to_adjust=[],
                                    message=f"informed: {current.id} {target.value}")
                        for p in sorted(self.airspace.book.bound_parties(current.party_id))
                    ],
                )
                self.repo.set_operation_state(current.id, target, now)
                outcome = self._record_notice(outcome, changed, now, signed)
                self._remember(idem, 200, outcome, now)
            if target in LIVE_STATES:
                self._live(changed, undo)
            else:
                self._live_remove(current.id, undo)
            return outcome

        return transition

    def activate(self, operation_id: str, party_id: str, now: datetime, idem: Idempotency | None = None,
                 party_signature: PartySignature | None = None) -> NoticeOutcome:
        """A notified operation starts flying (signed: ``POST /v1/operations/ID/activate``)."""
        return self._group_commit(self.transition_work(operation_id, party_id, now, "activate", idem,
                                                       party_signature))

    def complete(self, operation_id: str, party_id: str, now: datetime, idem: Idempotency | None = None,
                 party_signature: PartySignature | None = None) -> NoticeOutcome:
        """An active operation is over; it leaves detection (signed: ``POST /v1/operations/ID/complete``)."""
        return self._group_commit(self.transition_work(operation_id, party_id, now, "complete", idem,
                                                       party_signature))

    def cancel(self, operation_id: str, party_id: str, now: datetime, idem: Idempotency | None = None,
               party_signature: PartySignature | None = None) -> NoticeOutcome:
        """A planned or live operation is called off; it leaves detection (signed: ``.../cancel``)."""
        return self._group_commit(self.transition_work(operation_id, party_id, now, "cancel", idem,
                                                       party_signature))


class DeliveryDesk:
    """Delivery use cases: acknowledgement, escalation past the deadline, recording sends. ``now`` injected."""

    FLUSH_CHUNK = 32
    """Stream sends recorded per transaction by :meth:`flush_streamed` (one ledger entry and one row update each,
    written as one batch of each; one checkpoint signature and one fsync per transaction: a few milliseconds of
    the service lock)."""

    def __init__(self, service: Forewarn, max_backoff_s: float = 300.0) -> None:
        self.service = service
        self.repo = service.repo
        self.max_backoff_s = max_backoff_s
        self._streamed: dict[str, datetime] = {}
        self._streamed_lock = threading.Lock()

    def inbox(self, party_id: str, after_seq: int = 0, channel: str | None = None, limit: int = 1000) -> list[Delivery]:
        """A party's deliveries after ``after_seq`` (oldest first)."""
        return self.repo.list_deliveries(party_id, after_seq=after_seq, channel=channel, limit=limit)

    def acknowledge(self, delivery_id: str, party_id: str, now: datetime,
                    party_signature: PartySignature | None = None) -> Delivery:
        """Record "received and understood" (never approval). Acknowledging an escalation acknowledges the
        original too. Repeating an acknowledgement changes nothing. Another party's delivery is not found.
        A ``party_signature`` covers ``POST /v1/deliveries/ID/ack`` and is kept with the ledger entry."""
        _require_aware(now)
        signed = self.service.ledger.accept(party_signature, party_id, "POST", f"/v1/deliveries/{delivery_id}/ack",
                                            now, delivery_id)
        with self.service._lock, self.repo.transaction():
            delivery = self.repo.get_delivery(delivery_id)
            if delivery is None or delivery.party_id != party_id:
                raise NotFound(f"no delivery {delivery_id} for party {party_id}", {"delivery_id": delivery_id})
            if delivery.acked_at is not None:
                return delivery
            related = [delivery]
            if delivery.escalation_of:
                original = self.repo.get_delivery(delivery.escalation_of)
                if original is not None and original.acked_at is None:
                    related.append(original)
            for d in related:
                self.repo.update_delivery(d.model_copy(update={"acked_at": now}))
            self.service.ledger.append("acknowledgement", delivery.id, {
                "delivery_id": delivery.id, "acknowledges": [d.id for d in related], "acked_at": now,
            }, now, party_id=party_id, party_signature=signed)
            return delivery.model_copy(update={"acked_at": now})

    def escalate_overdue(self, now: datetime) -> list[Delivery]:
        """Escalate every primary delivery past its acknowledgement deadline over the backup channel; recorded."""
        _require_aware(now)
        created: list[Delivery] = []
        if not self.repo.overdue_acknowledgements(now, limit=1):
            # a read first (WAL: no lock, no write transaction): the worker asks after every commit
            return created
        with self.service._lock, self.repo.transaction():
            for delivery in self.repo.overdue_acknowledgements(now):
                party = self.repo.get_party(delivery.party_id)
                payload = dict(delivery.payload) | {
                    "type": "escalation", "escalation_of": delivery.id,
                    "deadline": delivery.ack_deadline.isoformat() if delivery.ack_deadline else None,
                }
                backup = Delivery(
                    id=str(uuid.uuid4()), notice_id=delivery.notice_id, party_id=delivery.party_id, channel="backup",
                    reason="escalation", escalation_of=delivery.id, payload=payload, created_at=now,
                    next_attempt_at=now if party is not None and party.backup_webhook_url else None,
                    lead_time_s=delivery.lead_time_s, min_notice_s=delivery.min_notice_s, late=delivery.late,
                )
                self.repo.add_deliveries([backup])
                self.repo.update_delivery(delivery.model_copy(update={"escalated_at": now}))
                created.append(backup)
                origin = self.repo.find_ledger(kinds=["delivery_created"], subject=delivery.id)
                first = origin[0].body if origin else {}
                self.service.ledger.append("escalation", delivery.id, {
                    "delivery_id": delivery.id, "escalation_id": backup.id, "ack_deadline": delivery.ack_deadline,
                }, now, party_id=delivery.party_id)
                self.service._ledger_deliveries([backup], int(first.get("origin_seq") or 0), now,
                                                operation_id=first.get("operation_id"), site_id=first.get("site_id"))
            self.service._pending.update(d.party_id for d in created)
        self.service._after_commit()
        return created

    def _first_send(self, delivery: Delivery, now: datetime) -> dict[str, Any]:
        """On the first send, the lead time becomes the operation's start minus this moment (late re-checked)."""
        update: dict[str, Any] = {}
        if delivery.first_sent_at is None:
            update["first_sent_at"] = now
            if delivery.lead_time_s is not None:
                lead = delivery.lead_time_s - (now - delivery.created_at).total_seconds()
                update |= {"lead_time_s": lead, "late": lead < (delivery.min_notice_s or 0.0)}
        return update

    def note_streamed(self, delivery: Delivery, now: datetime) -> None:
        """An event stream wrote the delivery to a connected client: remembered in memory, written by
        :meth:`flush_streamed` (the worker does it every pass), so streams never wait for a write transaction.
        A crash may lose such a note; the stream is resumable, so nothing is lost but the send time."""
        if delivery.delivered_at is None:
            with self._streamed_lock:
                self._streamed.setdefault(delivery.id, now)

    def flush_streamed(self) -> int:
        """Record the sends noted by the event streams, in one transaction; returns how many were recorded."""
        with self._streamed_lock:
            noted, self._streamed = self._streamed, {}
        if not noted:
            return 0
        recorded = 0
        items = list(noted.items())
        # in short transactions (each a few milliseconds): a filing waiting for the service lock is not held up
        # behind the whole backlog of a busy fan-out
        for start in range(0, len(items), self.FLUSH_CHUNK):
            chunk = items[start:start + self.FLUSH_CHUNK]
            with self.service._lock, self.repo.transaction():
                # times and state only: the payloads (the bulk of each row) are not needed to record a send
                stored = self.repo.get_deliveries([delivery_id for delivery_id, _ in chunk], payloads=False)
                changed: list[Delivery] = []
                drafts: list[Draft] = []
                for delivery_id, at in chunk:
                    current = stored.get(delivery_id)
                    if current is None or current.delivered_at is not None:
                        continue
                    update = self._first_send(current, at) | {"delivered_at": at}
                    changed.append(current.model_copy(update=update))
                    drafts += self._send_entries(current, at, "stream", sent="first_sent_at" in update, delivered=True)
                # one UPDATE statement and one ledger batch (one head read, one INSERT, one checkpoint) per chunk
                self.repo.update_deliveries(changed)
                self.service.ledger.append_many(drafts, max(at for _, at in chunk))
                recorded += len(changed)
        return recorded

    def record_attempt(self, delivery: Delivery, ok: bool, error: str | None, now: datetime) -> Delivery:
        """A webhook attempt: on success the delivery is delivered; else retried with exponential backoff."""
        with self.service._lock, self.repo.transaction():
            current = self.repo.get_delivery(delivery.id) or delivery
            attempts = current.attempts + 1
            update: dict[str, Any] = self._first_send(current, now) | {"attempts": attempts, "last_error": error}
            if ok:
                update |= {"delivered_at": current.delivered_at or now, "next_attempt_at": None}
            else:
                backoff = min(self.max_backoff_s, 0.5 * 2 ** (attempts - 1))
                update["next_attempt_at"] = now + timedelta(seconds=backoff)
            changed = current.model_copy(update=update)
            self.repo.update_delivery(changed)
            drafts = self._send_entries(changed, now, "webhook", sent="first_sent_at" in update,
                                        delivered=ok and current.delivered_at is None)
            if not ok:
                drafts.append(Draft("delivery_attempt_failed", changed.id, {
                    "delivery_id": changed.id, "attempt": attempts, "error": error,
                    "next_attempt_at": changed.next_attempt_at}, changed.party_id))
            self.service.ledger.append_many(drafts, now)
            return changed

    @staticmethod
    def _send_entries(delivery: Delivery, at: datetime, via: str, sent: bool, delivered: bool) -> list[Draft]:
        """The ledger entries (at ``at``, UTC) of the first send and the delivery of ``delivery``. A first send
        that is also the delivery (an event-stream send, a webhook answered 2xx at once) is one
        ``delivery_delivered`` entry carrying both times; a first send that failed is a ``delivery_sent``."""
        if delivered:
            body: dict[str, Any] = {"delivery_id": delivery.id, "delivered_at": at, "via": via}
            if sent:
                body["first_sent_at"] = at
            return [Draft("delivery_delivered", delivery.id, body, delivery.party_id, at=at)]
        if sent:
            return [Draft("delivery_sent", delivery.id, {"delivery_id": delivery.id, "first_sent_at": at, "via": via},
                          delivery.party_id, at=at)]
        return []
