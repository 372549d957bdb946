"""What the HTTP layer holds: the service, the delivery desk, the token verifier, the issuer key, the clock,
the background worker and the event-stream wake-ups. Built once by :func:`forewarn.http.app.create_app`."""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import anyio
import jwt

from forewarn.core.credentials import Principal, admit
from forewarn.core.records import Delivery
from forewarn.notify.worker import DeliveryWorker
from forewarn.service.compose import build_graph
from forewarn.service.desk import DeliveryDesk
from forewarn.service.notices import Forewarn
from forewarn.service.settings import Settings
from forewarn.service.tokens import IssuerKey, TokenVerifier, issue_token
from forewarn.service.tracking import Tracker

Waiter = tuple[asyncio.AbstractEventLoop, asyncio.Event, str]
"""An open event stream: its event loop, the event that wakes it, and its party."""


@dataclass
class StreamHub:
    """Wakes the event streams (asyncio) of the parties that got deliveries in a commit (called from any thread),
    and keeps an in-memory tail of each party's latest deliveries so that a woken stream need not read the table.

    The tail is fed by :meth:`publish` after every commit that stored deliveries (``SQLiteRepository.
    delivery_hooks``: commit order, under the writer lock). It is trusted only where it is provably complete:
    ``complete_after`` is the sequence number after which every stored delivery went through :meth:`publish`
    (moved up whenever the sequence numbers jump, e.g. another process wrote to the file), and a party's
    ``floors`` entry the last sequence number its bounded tail dropped. A stream that has read the table up to a
    position at or above both is served from the tail; otherwise it reads the table (see ``routes.stream``)."""

    waiters: set[Waiter] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    tail_size: int = 256
    """Deliveries kept per party."""
    tails: dict[str, deque[Delivery]] = field(default_factory=dict)
    floors: dict[str, int] = field(default_factory=dict)
    complete_after: int | None = None
    last_seq: int | None = None
    open_streams: dict[str, int] = field(default_factory=dict)
    """Streams open per party (``stream_max_per_party``)."""
    replay_threads: int = 4
    """Threads that read and render replay pages, shared by every stream: replays queue for them instead of
    taking the threads the other requests run in."""
    _limiters: dict[int, anyio.CapacityLimiter] = field(default_factory=dict)

    def open_stream(self, party_id: str, limit: int) -> Callable[[], None] | None:
        """Take one of the party's ``limit`` stream slots: the function that gives it back (idempotent), or None
        when all are taken."""
        with self.lock:
            if self.open_streams.get(party_id, 0) >= limit:
                return None
            self.open_streams[party_id] = self.open_streams.get(party_id, 0) + 1
        released = threading.Event()

        def release() -> None:
            with self.lock:
                if released.is_set():
                    return
                released.set()
                left = self.open_streams.get(party_id, 1) - 1
                if left > 0:
                    self.open_streams[party_id] = left
                else:
                    self.open_streams.pop(party_id, None)

        return release

    def replay_limiter(self) -> anyio.CapacityLimiter:
        """The replay threads' limiter of the running event loop."""
        loop = id(asyncio.get_running_loop())
        limiter = self._limiters.get(loop)
        if limiter is None:
            limiter = self._limiters[loop] = anyio.CapacityLimiter(self.replay_threads)
        return limiter

    def register(self, party_id: str) -> Waiter:
        entry = (asyncio.get_running_loop(), asyncio.Event(), party_id)
        with self.lock:
            self.waiters.add(entry)
        return entry

    def unregister(self, entry: Waiter) -> None:
        with self.lock:
            self.waiters.discard(entry)

    def notify(self, parties: frozenset[str]) -> None:
        with self.lock:
            waiters = [w for w in self.waiters if w[2] in parties]
        for loop, event, _ in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

    def publish(self, deliveries: list[Delivery]) -> None:
        """Committed deliveries (``seq`` set, ascending): into the tails, then wake their parties' streams."""
        with self.lock:
            for d in deliveries:
                if self.last_seq is not None and d.seq <= self.last_seq:
                    continue  # already covered by a remote() jump: streams below it read the table
                if self.last_seq is None or d.seq != self.last_seq + 1:
                    self.complete_after = d.seq - 1  # a jump: what lies before is known only to the table
                self.last_seq = d.seq
                tail = self.tails.setdefault(d.party_id, deque())
                if len(tail) >= self.tail_size:
                    self.floors[d.party_id] = tail.popleft().seq
                tail.append(d)
        self.notify(frozenset(d.party_id for d in deliveries))

    def remote(self, head: int, parties: frozenset[str] | None) -> None:
        """Another process committed deliveries up to ``head`` (for ``parties``; None: any): they are not in the
        tail, so the tail is declared complete only after ``head`` (streams below it read the table, which holds
        them: they were committed before this was heard), then the streams are woken."""
        with self.lock:
            if self.last_seq is None or head > self.last_seq:
                self.last_seq = self.complete_after = head
            waiters = [w for w in self.waiters if parties is None or w[2] in parties]
        for loop, event, _ in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

    def position(self) -> int | None:
        """The last sequence number published; a read of the table started after this call sees everything up
        to it (it was committed before it was published)."""
        with self.lock:
            return self.last_seq

    def since(self, party_id: str, after: int, synced: int | None, channel: str) -> tuple[list[Delivery], int] | None:
        """The party's deliveries on ``channel`` with ``seq > after`` from the tail, and the new position, for a
        stream that has every delivery up to ``synced``; None when the tail cannot prove it is complete there
        (read the table instead)."""
        with self.lock:
            if (synced is None or self.last_seq is None or self.complete_after is None
                    or synced < self.complete_after or synced < self.floors.get(party_id, 0)):
                return None
            newer: list[Delivery] = []
            for d in reversed(self.tails.get(party_id, ())):
                if d.seq <= after:
                    break
                if d.channel == channel:
                    newer.append(d)
            newer.reverse()
            return newer, self.last_seq


@dataclass
class Runtime:
    settings: Settings
    service: Forewarn
    desk: DeliveryDesk
    key: IssuerKey
    verifier: TokenVerifier
    clock: Callable[[], datetime]
    hub: StreamHub
    worker: DeliveryWorker | None = None
    tracker: Tracker | None = None
    """Live tracks (with the SQLite store)."""
    stop_listening: Callable[[], None] | None = None
    """Stops the listener of other processes' deliveries (a store shared by several processes)."""
    verified: dict[str, tuple[Principal, float]] = field(default_factory=dict)
    """Bearer tokens already verified -> (principal, expiry as UNIX seconds): see :meth:`authenticate`."""

    def authenticate(self, token: str) -> Principal:
        """The principal of a bearer token at ``clock()``. A token's signature, issuer and audience are checked
        once (the same text always carries the same signed claims, and trusted keys are only ever added); its
        expiry is checked on every call, and so is the store's word on its party (one indexed read: disabled?
        the token's credentials revoked? for a trusted external issuer's token, the scopes its party's
        unrevoked credentials allow: :func:`forewarn.core.credentials.admit`)."""
        now = self.clock()
        known = self.verified.get(token)
        if known is not None and known[1] > now.timestamp():
            who = known[0]
        else:
            who = self.verifier.verify(token, now)
            if len(self.verified) >= 4096:
                self.verified.clear()
            self.verified[token] = (who, float(jwt.decode(token, options={"verify_signature": False})["exp"]))
        return admit(who, self.service.party_access(who.party_id))

    def listen(self) -> None:
        """With a store shared by several processes (:class:`DeliveryWakeups`): hear of the deliveries the other
        processes commit, and wake this process's event streams and webhook worker for them."""
        if self.stop_listening is not None:
            return

        def wakeup(head: int, parties: frozenset[str] | None) -> None:
            self.hub.remote(head, parties)
            if self.worker is not None:
                self.worker.wake(parties or frozenset())

        self.stop_listening = self.service.listen_remote_deliveries(wakeup)

    def unlisten(self) -> None:
        """Stop :meth:`listen`'s listener, if any."""
        if self.stop_listening is not None:
            self.stop_listening()
            self.stop_listening = None

    def token_for(self, party_id: str, scopes: list[str], client_id: str = "") -> tuple[str, int]:
        """A bearer token for ``party_id`` with ``scopes`` (issued for credentials ``client_id``: revoking them
        refuses it), and its lifetime in seconds."""
        ttl = self.settings.token_ttl_s
        token = issue_token(self.key, self.settings.issuer, self.settings.audience, party_id, scopes, self.clock(),
                            timedelta(seconds=ttl), client_id)
        return token, ttl


def build_runtime(settings: Settings, service: Forewarn | None, clock: Callable[[], datetime]) -> Runtime:
    """The runtime of the HTTP application: the service graph from the composition root
    (:func:`forewarn.service.compose.build_graph`; ``service`` if given) and the event-stream hub fed by it."""
    graph = build_graph(settings, clock(), service)
    hub = StreamHub()
    graph.service.listeners.append(hub.notify)
    graph.service.after_delivery_commit(hub.publish)
    return Runtime(settings=settings, service=graph.service, desk=graph.desk, key=graph.key,
                   verifier=graph.verifier, clock=clock, hub=hub, tracker=graph.tracker)
