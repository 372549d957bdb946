"""The background worker of ``forewarn serve``: escalates overdue acknowledgements and sends due webhooks.

It keeps no state of its own: what is due is read from the store (the outbox), so after a crash or a restart
every delivery owed is found and sent again (at least once; receivers de-duplicate on the delivery id).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

import httpx

from forewarn.core.policy import view_delivery
from forewarn.notify.webhook import post
from forewarn.service.desk import DeliveryDesk
from forewarn.service.tokens import IssuerKey

log = logging.getLogger("forewarn.worker")


class DeliveryWorker:
    """A daemon thread: every ``poll_s`` seconds, or at once when woken after a commit, run :meth:`run_once`."""

    def __init__(self, desk: DeliveryDesk, key: IssuerKey, clock: Callable[[], datetime], poll_s: float = 0.25,
                 timeout_s: float = 5.0) -> None:
        self.desk = desk
        self.key = key
        self.clock = clock
        self.poll_s = poll_s
        self._client = httpx.Client(timeout=timeout_s)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def wake(self, parties: frozenset[str] = frozenset()) -> None:
        """Run soon (called after a commit that created deliveries, for any parties)."""
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="forewarn-deliveries", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.desk.flush_streamed()
        self._client.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # the loop must outlive any one failure; it is logged and retried
                log.exception("delivery worker pass failed")
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def run_once(self) -> int:
        """Record what the event streams sent, escalate what is overdue, then attempt every due webhook once;
        returns the webhook attempts made."""
        self.desk.flush_streamed()
        self.desk.escalate_overdue(self.clock())
        attempts = 0
        repo = self.desk.repo
        for delivery in repo.due_webhook_deliveries(self.clock()):
            party = repo.get_party(delivery.party_id)
            url = None if party is None else (
                party.webhook_url if delivery.channel == "primary" else party.backup_webhook_url)
            if url is None:  # the party removed its webhook: the event stream remains
                repo.update_delivery(delivery.model_copy(update={"next_attempt_at": None,
                                                                 "last_error": "no webhook configured"}))
                continue
            # re-gated like the inbox and the stream: what the agreements no longer allow is withheld again
            shown = view_delivery(delivery.party_id, delivery, self.desk.service.airspace.book)
            if shown is None:
                repo.update_delivery(delivery.model_copy(update={"next_attempt_at": None,
                                                                 "last_error": "withheld by the sharing policy"}))
                continue
            ok, error = post(self._client, url, shown, self.key)
            self.desk.record_attempt(delivery, ok=ok, error=error, now=self.clock())
            attempts += 1
        return attempts
