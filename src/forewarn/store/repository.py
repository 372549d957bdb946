"""The Repository protocol: what the service needs from a store, nothing more.

Writes happen inside :meth:`Repository.transaction`; a failure inside it leaves the store unchanged.
Times are timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from forewarn.core.credentials import Credential, PartyAccess
from forewarn.core.model import Agreement, Operation, OperationState, Party, ProtectedSite, Subscription
from forewarn.core.records import Delivery, NoticeOutcome
from forewarn.ledger.chain import LedgerEntry, Link
from forewarn.ledger.keys import PartyKey
from forewarn.tracks.alerts import TrackAlert
from forewarn.tracks.model import PositionBatch

if TYPE_CHECKING:
    from forewarn.store.sqlite.tracks import StoredPositions, TrackRecord


class StoredNotice(BaseModel):
    """A notice as stored: its id, kind, time and full outcome."""

    model_config = ConfigDict(frozen=True)

    id: int
    operation_id: str
    version: int
    party_id: str
    kind: str
    at: datetime
    outcome: NoticeOutcome


class LiveChanges(BaseModel):
    """What a change log holds after a position: the current version and state of each operation changed (any
    state: the reader drops those no longer live), each agreement changed, and the log's position after them."""

    model_config = ConfigDict(frozen=True)

    head: int
    operations: list[Operation] = []
    agreements: list[Agreement] = []
    complete: bool = True
    """False when rows after the position asked for were pruned: the reader must reload the whole live picture
    (``operations`` and ``agreements`` are then empty, and ``head`` is the position to reload at)."""


@runtime_checkable
class ChangeLog(Protocol):
    """A store shared by several service processes: an append-only log of changes of the live picture (a
    monotonic sequence), written by every transaction that changes an operation or an agreement, read under the
    writer lock by each process to keep its in-memory airspace a replica of the store (PostgreSQL)."""

    def change_head(self) -> int:
        """The log's latest position (0 when empty)."""
        ...

    def changes_since(self, seq: int) -> LiveChanges:
        """Everything changed after position ``seq``, and the position after it (not ``complete`` when part
        of it was pruned)."""
        ...

    def report_replica(self, replica_id: str, seen: int, now: datetime) -> None:
        """Record that the replica ``replica_id`` has applied the log up to ``seen`` (a heartbeat at ``now``)."""
        ...

    def forget_replica(self, replica_id: str) -> None:
        """The replica is gone (its process stops): it no longer holds back pruning."""
        ...

    def prune_changes(self, now: datetime, retention: timedelta) -> int:
        """Delete the log's rows every replica heard from within ``retention`` of ``now`` has applied (forgetting
        the replicas not heard from); the number of rows deleted."""
        ...


@runtime_checkable
class DeliveryClaims(Protocol):
    """A store whose outbox several workers (processes) drain: a due attempt is claimed by one of them (PostgreSQL:
    ``FOR UPDATE SKIP LOCKED``) and hidden from the others for a lease."""

    def take_due_webhook_deliveries(self, now: datetime, lease: timedelta, limit: int = 100) -> list[Delivery]:
        """Claim the due webhook deliveries (at most ``limit``) until ``now + lease``; as they were before."""
        ...


@runtime_checkable
class DeliveryWakeups(Protocol):
    """A store shared by several processes that tells each of them of the deliveries the others commit
    (PostgreSQL: LISTEN/NOTIFY)."""

    def listen_deliveries(self, wakeup: Callable[[int, frozenset[str] | None], None]) -> Callable[[], None]:
        """Call ``wakeup(highest seq, parties or None for any)`` after each other process's commit that stored
        deliveries (from a thread of its own); returns the function that stops listening."""
        ...


class Repository(Protocol):
    """Store of parties, agreements, sites, operation versions and notices."""

    delivery_hooks: list[Callable[[list[Delivery]], None]]
    """Called after each COMMIT that stored deliveries, with them (``seq`` set), in commit order (the event
    streams' in-memory tail). A hook that raises is logged and never undoes the commit."""

    def close(self) -> None:
        """Release the store's connections."""
        ...

    def transaction(self) -> AbstractContextManager[None]:
        """One atomic unit of work: all writes inside commit together or not at all."""
        ...

    def savepoint(self) -> AbstractContextManager[None]:
        """Inside :meth:`transaction`: the block's writes are undone if it raises, the transaction goes on."""
        ...

    def before_commit(self, key: str, hook: Callable[[], None]) -> None:
        """Run ``hook`` just before the open transaction's COMMIT, inside it (one hook per ``key``)."""
        ...

    def schema_version(self) -> int: ...

    def put_party(self, party: Party) -> None: ...
    def get_party(self, party_id: str) -> Party | None: ...
    def list_parties(self) -> list[Party]: ...

    def put_agreement(self, agreement: Agreement) -> None: ...
    def get_agreement(self, agreement_id: str) -> Agreement | None: ...
    def list_agreements(self) -> list[Agreement]: ...

    def put_site(self, site: ProtectedSite) -> None: ...
    def get_site(self, site_id: str) -> ProtectedSite | None: ...
    def list_sites(self) -> list[ProtectedSite]: ...

    def add_operation_version(self, operation: Operation, at: datetime) -> None:
        """Store a new version of an operation (version 1 creates it) and make it current."""
        ...

    def set_operation_state(self, operation_id: str, state: OperationState, at: datetime,
                            notified_at: datetime | None = None) -> None: ...
    def get_operation(self, operation_id: str, version: int | None = None) -> Operation | None: ...
    def list_operations(self, states: Sequence[OperationState] | None = None,
                        party_id: str | None = None) -> list[Operation]: ...
    def operation_versions(self, operation_id: str) -> list[Operation]: ...

    def add_notice(self, outcome: NoticeOutcome) -> int:
        """Store a notice with its outcome (conflicts and site warnings indexed); returns its id."""
        ...

    def list_notices(self, operation_id: str | None = None) -> list[StoredNotice]: ...

    def iter_live_operations(self) -> Iterator[Operation]:
        """Latest version of every notified or active operation (to rebuild the index at start)."""
        ...

    # credentials and the issuer key
    def put_credential(self, credential: Credential) -> None: ...
    def get_credential(self, client_id: str) -> Credential | None: ...
    def list_credentials(self, party_id: str) -> list[Credential]: ...
    def set_party_disabled(self, party_id: str, at: datetime | None) -> None:
        """Disable a party from ``at`` (UTC), or enable it again (None)."""
        ...

    def party_access(self, party_id: str) -> PartyAccess | None:
        """Whether the party is disabled and its credentials (one read; None: no such party): the check of every
        request's token."""
        ...

    def get_issuer_key(self) -> tuple[str, str] | None:
        """(kid, private PEM) of the service's signing key (from its key file, never the database: issue 20), or
        None before the first start."""
        ...

    def put_issuer_key(self, kid: str, private_pem: str, at: datetime) -> None: ...

    # deliveries: the transactional outbox
    def add_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        """Store deliveries (normally in the transaction of the notice that owes them); ``seq`` is assigned."""
        ...

    def get_delivery(self, delivery_id: str) -> Delivery | None: ...
    def get_deliveries(self, delivery_ids: Sequence[str], *, payloads: bool = True) -> dict[str, Delivery]:
        """id -> delivery for those of ``delivery_ids`` that exist (one query per 500 ids). With
        ``payloads=False`` each payload is left empty (``{}``), unread and unparsed: for callers that update
        times and state only (:meth:`update_delivery` never writes the payload)."""
        ...

    def list_deliveries(self, party_id: str | None = None, after_seq: int = 0, channel: str | None = None,
                        limit: int = 1000) -> list[Delivery]: ...
    def update_delivery(self, delivery: Delivery) -> None:
        """Write back a delivery's times, attempts, lead time and state (not its payload)."""
        ...

    def update_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        """:meth:`update_delivery` for each, in one statement (one transaction)."""
        ...

    def due_webhook_deliveries(self, now: datetime, limit: int = 100) -> list[Delivery]:
        """Undelivered deliveries whose next webhook attempt is due."""
        ...

    def overdue_acknowledgements(self, now: datetime, limit: int = 100) -> list[Delivery]:
        """Primary deliveries past their acknowledgement deadline, neither acknowledged nor escalated."""
        ...

    # idempotency keys and subscriptions
    def get_idempotent(self, party_id: str, key: str) -> tuple[str, int, str] | None:
        """(request hash, status, response body) stored for this party's Idempotency-Key."""
        ...

    def put_idempotent(self, party_id: str, key: str, request_hash: str, status: int, response: str,
                       at: datetime) -> None: ...
    def put_subscription(self, subscription: Subscription) -> None: ...
    def delete_subscription(self, subscription_id: str, party_id: str) -> None:
        """Delete ``party_id``'s subscription ``subscription_id`` (subscriptions are keyed per party)."""
        ...
    def list_subscriptions(self, party_id: str | None = None) -> list[Subscription]: ...

    # the ledger (forewarn.ledger): append-only, hash-chained entries, and the parties' signing keys
    def ledger_head(self) -> tuple[int, str] | None:
        """(seq, entry hash) of the last entry, or None for an empty ledger (one index lookup)."""
        ...

    def add_ledger_entries(self, entries: Sequence[tuple[LedgerEntry, str]]) -> None:
        """Append entries in order, each with its body as JSON text (the canonical form the ledger hashed), in
        one batch; a reused (party, nonce) of a party signature is refused, and then none of them is stored."""
        ...

    def iter_ledger(self, after_seq: int = 0, batch: int = 1000) -> Iterator[LedgerEntry]:
        """Every entry after ``after_seq`` in stored order (ascending seq), read in batches."""
        ...

    def ledger_entries(self, seqs: Sequence[int]) -> list[LedgerEntry]:
        """The entries with these sequence numbers (ascending seq; missing ones are left out)."""
        ...

    def ledger_links(self, first: int, last: int) -> list[Link]:
        """(seq, prev, digest, hash, and the signature of a checkpoint) of every entry with ``first <= seq <=
        last``, ascending."""
        ...

    def sign_ledger_entry(self, seq: int, service_key_id: str, service_signature: str) -> None:
        """Give entry ``seq``, appended unsigned in the open transaction, its service signature."""
        ...

    def ledger_checkpoint(self, seq: int) -> Link | None:
        """The first signed entry at or after ``seq`` (the checkpoint that covers it), or None."""
        ...

    def find_ledger(self, kinds: Sequence[str] | None = None, subject: str | None = None,
                    party_id: str | None = None, body_equals: dict[str, str] | None = None) -> list[LedgerEntry]:
        """Entries filtered by kind, subject, party and top-level body fields equal to a value (names
        ``[a-z_][a-z0-9_]*``; ``operation_id`` and ``site_id`` are indexed); ascending seq."""
        ...

    def ledger_nonce_used(self, party_id: str, nonce: str) -> bool:
        """Whether an accepted party signature of ``party_id`` already used ``nonce``."""
        ...

    def list_issuer_keys(self) -> list[tuple[str, str]]:
        """Every (kid, PEM) the service has had, oldest first (to verify old ledger entries): public PEMs (a bare
        PostgreSQL repository without a key file still returns private ones)."""
        ...

    def put_party_key(self, key: PartyKey) -> None:
        """Create or update (revoke) a party key."""
        ...

    def get_party_key(self, key_id: str) -> PartyKey | None: ...
    def list_party_keys(self, party_id: str | None = None) -> list[PartyKey]:
        """Keys with their history, by party then ``valid_from``."""
        ...


class TrackStorage(Protocol):
    """Store of live tracks beside a :class:`Repository` (its writes join the repository's transactions): accepted
    positions, each track's latest state, alerts and feed-quality counters. Units of :mod:`forewarn.tracks.model`."""

    def add_positions(self, party_id: str, source: str, batch: PositionBatch,
                      flags: Sequence[str | None] | None = None) -> int: ...
    def stored(self, party_id: str, batch: PositionBatch) -> npt.NDArray[np.bool_]: ...
    def count_positions(self, party_id: str | None = None) -> int: ...
    def positions(self, party_id: str | None = None, t_from: float | None = None,
                  t_to: float | None = None) -> list[StoredPositions]: ...
    def put_tracks(self, records: Iterable[TrackRecord]) -> None: ...
    def list_tracks(self, party_ids: Iterable[str] | None = None) -> list[TrackRecord]: ...
    def add_alerts(self, alerts: Sequence[TrackAlert]) -> None: ...
    def open_alerts(self) -> list[TrackAlert]: ...
    def list_alerts(self, party_id: str | None = None, since: datetime | None = None) -> list[TrackAlert]: ...
    def add_quality(self, source: str, counts: dict[str, int]) -> None: ...
    def quality(self) -> dict[str, dict[str, int]]: ...


@dataclass(frozen=True)
class AlertState:
    """A stored alert as the shared tracker state holds it: whether its encounter is open, and (for an open
    predicted encounter) the feed time it was last predicted (POSIX seconds UTC; None: only when raised) and how
    many passes predicted it again since."""

    alert: TrackAlert
    open: bool
    last_seen_s: float | None = None
    updates: int = 0


@dataclass(frozen=True)
class TrackStateChanges:
    """What changed in the shared tracker state after a position: the tracks' latest states, the alerts opened or
    closed (in the order they changed), the open predicted encounters predicted again (alert id, last predicted
    at in feed seconds, passes since raised), the tracker's values (``period:PARTY/SOURCE``: feed period in
    seconds; ``predicted_at``: feed time of the last prediction pass), and the position after them."""

    head: int
    tracks: list[TrackRecord] = field(default_factory=list)
    alerts: list[AlertState] = field(default_factory=list)
    statuses: list[tuple[str, float, int]] = field(default_factory=list)
    values: dict[str, float] = field(default_factory=dict)


@runtime_checkable
class SharedTrackState(Protocol):
    """A track store shared by several service processes (PostgreSQL): every change of the tracker's state is
    numbered by one sequence in commit order (writes hold the writer lock), so each process keeps its tracker a
    replica of the one state by reading the changes after its position, under the lock, before it works."""

    def track_state_head(self) -> int:
        """The latest position (0 when nothing was ever written)."""
        ...

    def track_changes_since(self, seq: int) -> TrackStateChanges:
        """Everything changed after position ``seq``, and the position after it."""
        ...

    def shared_state(self) -> TrackStateChanges:
        """The whole state (every track, the open alerts, every value) and a position it is at least as new as."""
        ...

    def put_encounter_status(self, statuses: Sequence[tuple[str, float, int]]) -> None:
        """Inside a transaction: (alert id, last predicted at in feed seconds, passes since raised) of open
        predicted encounters predicted again."""
        ...

    def put_tracker_values(self, values: dict[str, float]) -> None:
        """Inside a transaction: create or replace the tracker's named values."""
        ...
