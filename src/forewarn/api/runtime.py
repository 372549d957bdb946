"""What the HTTP layer holds: the service, the delivery desk, the token verifier, the issuer key, the clock,
the background worker and the event-stream wake-ups. Built once by :func:`forewarn.api.create_app`."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from forewarn.auth import IssuerKey, TokenVerifier, issue_token, load_trusted_keys
from forewarn.notify.worker import DeliveryWorker
from forewarn.service import DeliveryDesk, Forewarn
from forewarn.settings import Settings
from forewarn.store.sqlite import SQLiteRepository
from forewarn.store.tracks_sqlite import TrackStore
from forewarn.tracks.tracker import Tracker

Waiter = tuple[asyncio.AbstractEventLoop, asyncio.Event, str]
"""An open event stream: its event loop, the event that wakes it, and its party."""


@dataclass
class StreamHub:
    """Wakes the event streams (asyncio) of the parties that got deliveries in a commit (called from any thread)."""

    waiters: set[Waiter] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

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

    def token_for(self, party_id: str, scopes: list[str]) -> tuple[str, int]:
        """A bearer token for ``party_id`` with ``scopes``, and its lifetime in seconds."""
        ttl = self.settings.token_ttl_s
        token = issue_token(self.key, self.settings.issuer, self.settings.audience, party_id, scopes, self.clock(),
                            timedelta(seconds=ttl))
        return token, ttl


def issuer_key(service: Forewarn, now: datetime) -> IssuerKey:
    """The service's signing key: loaded from the store, or generated and stored at the first start."""
    stored = service.repo.get_issuer_key()
    if stored is not None:
        return IssuerKey.from_pem(*stored)
    key = IssuerKey.generate()
    with service.repo.transaction():
        service.repo.put_issuer_key(key.kid, key.private_pem(), now)
    return key


def build_runtime(settings: Settings, service: Forewarn, clock: Callable[[], datetime]) -> Runtime:
    key = issuer_key(service, clock())
    verifier = TokenVerifier(issuer=settings.issuer, audience=settings.audience)
    verifier.add(key.kid, settings.issuer, key.private.public_key())
    if settings.trusted_keys is not None:
        for kid, iss, public in load_trusted_keys(settings.trusted_keys):
            verifier.add(kid, iss, public)
    hub = StreamHub()
    service.listeners.append(hub.notify)
    tracker = (Tracker(service, TrackStore(service.repo), settings.track_settings())
               if isinstance(service.repo, SQLiteRepository) else None)
    return Runtime(settings=settings, service=service, desk=DeliveryDesk(service), key=key, verifier=verifier,
                   clock=clock, hub=hub, tracker=tracker)
