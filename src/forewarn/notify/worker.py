"""The background worker of ``forewarn serve``: escalates overdue acknowledgements and sends due webhooks.

It keeps no state that matters across a restart: what is due is read from the store (the outbox), so after a
crash or a restart every delivery owed is found and sent again (at least once; receivers de-duplicate on the
delivery id).

Receivers never wait on each other. Each receiver (scheme, host, port of the URL) is a *lane* with its own
concurrency (``webhook_concurrency``), its own bound on waiting deliveries (``webhook_queue``) and its own circuit
breaker (``webhook_breaker_*``); every attempt has a total deadline (``webhook_timeout_s``). The worker runs one
asyncio event loop in its thread: a black-holed receiver holds only its own lane's slots while the loop keeps
sending to everyone else. A delivery its lane cannot take now (breaker open, lane full) is deferred in the outbox
(``next_attempt_at``) without counting an attempt, so it does not crowd the due list.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import httpx

from forewarn.core.policy import view_delivery
from forewarn.core.records import Delivery
from forewarn.notify.breaker import CircuitBreaker
from forewarn.notify.webhook import Attempt, post
from forewarn.service.desk import DeliveryDesk
from forewarn.service.tokens import IssuerKey
from forewarn.service.webhook_urls import WebhookPolicy
from forewarn.store.repository import DeliveryClaims

log = logging.getLogger("forewarn.worker")

DUE_WINDOW = 1000
"""Due deliveries read per pass (those in flight stay due until their attempt is recorded)."""

LEASE_MIN_S = 30.0
"""The shortest lease of a claimed attempt (see :meth:`DeliveryWorker.lease`)."""


@dataclass
class Lane:
    """One receiver: its deliveries in flight or waiting, its concurrency slots and its breaker."""

    breaker: CircuitBreaker
    taken: int = 0
    slots: asyncio.Semaphore | None = None


@dataclass
class WebhookLimits:
    """The worker's tunables (from the settings, see docs/resilience.md)."""

    timeout_s: float = 5.0
    concurrency: int = 2
    queue: int = 32
    breaker_failures: int = 5
    breaker_cooldown_s: float = 30.0
    breaker_max_s: float = 600.0
    max_redirects: int = 0
    policy: WebhookPolicy = field(default_factory=WebhookPolicy)


def receiver_of(url: str) -> str:
    """The lane key of a webhook URL: scheme://host:port."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or ''}"


class DeliveryWorker:
    """A daemon thread running an event loop: every ``poll_s`` seconds, or at once when woken after a commit,
    a pass (:meth:`_pass`) hands due webhooks to their receivers' lanes."""

    def __init__(self, desk: DeliveryDesk, key: IssuerKey, clock: Callable[[], datetime], poll_s: float = 0.25,
                 timeout_s: float | None = None, limits: WebhookLimits | None = None) -> None:
        self.desk = desk
        self.key = key
        self.clock = clock
        self.poll_s = poll_s
        self.limits = limits or limits_from(desk)
        if timeout_s is not None:
            self.limits.timeout_s = timeout_s
        self.lanes: dict[str, Lane] = {}
        self._inflight: set[str] = set()
        self._tasks: set[asyncio.Task[bool]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def wake(self, parties: frozenset[str] = frozenset()) -> None:
        """Run soon (called after a commit that created deliveries, for any parties; from any thread)."""
        loop, event = self._loop, self._wake
        if loop is not None and event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(event.set)

    def start(self) -> None:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="forewarn-deliveries",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.wake()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.desk.flush_streamed()

    async def _main(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        async with self._client() as client:
            while not self._stop.is_set():
                try:
                    await self._pass(client)
                except Exception:  # the loop must outlive any one failure; it is logged and retried
                    log.exception("delivery worker pass failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_s)
                self._wake.clear()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=self.limits.timeout_s, follow_redirects=False,
                                 limits=httpx.Limits(max_connections=None, max_keepalive_connections=64))

    def run_once(self) -> int:
        """One pass, waiting for every attempt it started (tests and tools drive the worker with this instead
        of the thread); returns the webhook attempts made."""

        async def once() -> int:
            for lane in self.lanes.values():
                lane.slots = None  # semaphores belong to one event loop
            async with self._client() as client:
                started = await self._pass(client)
                results = await asyncio.gather(*started, return_exceptions=True)
            return sum(1 for r in results if r is True)

        return asyncio.run(once())

    async def _pass(self, client: httpx.AsyncClient) -> list[asyncio.Task[bool]]:
        """Record what the event streams sent, escalate what is overdue, then start an attempt for every due
        webhook its lane can take now; returns the attempts started."""
        desk = self.desk
        await asyncio.to_thread(desk.flush_streamed)
        await asyncio.to_thread(desk.escalate_overdue, self.clock())
        due = await asyncio.to_thread(self._due)
        started: list[asyncio.Task[bool]] = []
        settle: dict[str, tuple[datetime | None, str]] = {}
        deferred: dict[str, float] = {}
        for delivery in due:
            if delivery.id in self._inflight:
                continue
            url, shown, why = self._target(delivery)
            if url is None or shown is None:
                settle[delivery.id] = (None, why)
                continue
            lane = self._lane(receiver_of(url))
            wait = self._room(lane)
            if wait is not None:
                deferred[delivery.id] = wait
                continue
            lane.taken += 1
            self._inflight.add(delivery.id)
            task = asyncio.create_task(self._attempt(client, lane, delivery, shown, url))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started.append(task)
        now = self.clock()
        settle |= {i: (now + timedelta(seconds=s), "deferred: the receiver is busy or its circuit breaker is open")
                   for i, s in deferred.items()}
        if settle:
            await asyncio.to_thread(self._settle, settle)
        return started

    def _due(self) -> list[Delivery]:
        """The due webhook deliveries: claimed for a lease when several processes drain the same outbox
        (:class:`~forewarn.store.repository.DeliveryClaims`, PostgreSQL), so each attempt is made by one of them;
        read otherwise (one process per SQLite file: in-flight ones are skipped by ``_inflight``)."""
        repo, now = self.desk.repo, self.clock()
        if isinstance(repo, DeliveryClaims):
            return repo.take_due_webhook_deliveries(now, self.lease(), DUE_WINDOW)
        return repo.due_webhook_deliveries(now, DUE_WINDOW)

    def lease(self) -> timedelta:
        """How long a claimed attempt is hidden from the other processes: well past the attempt's deadline, so that
        only an attempt whose process died (or hung) is taken again, after it."""
        return timedelta(seconds=max(LEASE_MIN_S, 4 * self.limits.timeout_s))

    def _target(self, delivery: Delivery) -> tuple[str | None, Delivery | None, str]:
        """The URL of the delivery's channel and the delivery as its party may see it, or why there is none."""
        party = self.desk.repo.get_party(delivery.party_id)
        url = None if party is None else (
            party.webhook_url if delivery.channel == "primary" else party.backup_webhook_url)
        if url is None:  # the party removed its webhook: the event stream remains
            return None, None, "no webhook configured"
        # re-gated like the inbox and the stream: what the agreements no longer allow is withheld again
        shown = view_delivery(delivery.party_id, delivery, self.desk.service.airspace.book)
        return url, shown, "withheld by the sharing policy"

    def _lane(self, key: str) -> Lane:
        lane = self.lanes.get(key)
        if lane is None:
            limits = self.limits
            lane = self.lanes[key] = Lane(CircuitBreaker(limits.breaker_failures, limits.breaker_cooldown_s,
                                                         limits.breaker_max_s))
        return lane

    def _room(self, lane: Lane) -> float | None:
        """None when ``lane`` can take one more delivery now; else the seconds to defer it by."""
        limits, now = self.limits, time.monotonic()
        if lane.breaker.is_open:
            if lane.taken > 0 or not lane.breaker.allows(now):
                return max(lane.breaker.retry_in(now), 1.0)
            return None  # the half-open probe
        if lane.taken >= limits.concurrency + limits.queue:
            return limits.timeout_s
        return None

    async def _attempt(self, client: httpx.AsyncClient, lane: Lane, delivery: Delivery, shown: Delivery,
                       url: str) -> bool:
        """One attempt within the lane's concurrency and the total deadline, recorded in the store."""
        try:
            if lane.slots is None:
                lane.slots = asyncio.Semaphore(self.limits.concurrency)
            async with lane.slots:
                try:
                    result = await asyncio.wait_for(
                        post(client, url, shown, self.key, self.limits.policy, self.limits.max_redirects),
                        self.limits.timeout_s)
                except TimeoutError:
                    result = Attempt(False, f"no answer within {self.limits.timeout_s:g} s")
            lane.breaker.record(result.ok or result.permanent, time.monotonic())
            if result.permanent:
                await asyncio.to_thread(self._settle, {delivery.id: (None, result.error or "refused")})
            else:
                await asyncio.to_thread(self.desk.record_attempt, delivery, result.ok, result.error, self.clock())
            return True
        except Exception:
            log.exception("webhook attempt for delivery %s failed", delivery.id)
            return False
        finally:
            lane.taken -= 1
            self._inflight.discard(delivery.id)

    def _settle(self, changes: dict[str, tuple[datetime | None, str]]) -> None:
        """Set ``next_attempt_at`` and ``last_error`` of undelivered deliveries without counting an attempt,
        re-read under the service lock so that a concurrent acknowledgement is kept."""
        service, repo = self.desk.service, self.desk.repo
        with service.commits.committing(), repo.transaction():
            current = repo.get_deliveries(list(changes), payloads=False)
            repo.update_deliveries([
                d.model_copy(update={"next_attempt_at": changes[i][0], "last_error": changes[i][1]})
                for i, d in current.items() if d.delivered_at is None])


def limits_from(desk: DeliveryDesk) -> WebhookLimits:
    """The worker's limits from the service's settings."""
    s = desk.service.settings
    return WebhookLimits(timeout_s=s.webhook_timeout_s, concurrency=s.webhook_concurrency, queue=s.webhook_queue,
                         breaker_failures=s.webhook_breaker_failures, breaker_cooldown_s=s.webhook_breaker_cooldown_s,
                         breaker_max_s=s.webhook_breaker_max_s, max_redirects=s.webhook_max_redirects,
                         policy=WebhookPolicy(s.webhook_allow_http, s.webhook_allow_private))
