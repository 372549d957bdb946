"""Wake-ups across processes: every COMMIT that stored deliveries sends ``NOTIFY forewarn_deliveries`` (inside
the transaction, so PostgreSQL delivers it only if the COMMIT succeeds, and after it); every service process
``LISTEN``s on one dedicated connection in a thread and wakes its event streams and its webhook worker, so a
subscriber connected to any process hears of a filing made at another.

The payload is JSON ``{"from": <process instance>, "seq": <highest delivery seq>, "parties": [...]}``
(``parties`` null when the list would not fit PostgreSQL's 8000-byte payload: wake every stream). A process
ignores its own notifications (its in-process hooks already ran). After a lost connection the listener
reconnects and reports the outbox's current head for every party, since notifications may have been missed.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable

import psycopg

from forewarn.core.records import Delivery
from forewarn.store.postgres.connection import PostgresBase, Row

log = logging.getLogger("forewarn.store")

CHANNEL = "forewarn_deliveries"
"""The NOTIFY channel of committed deliveries."""
PAYLOAD_MAX = 7000
"""Bytes of payload sent at most (PostgreSQL refuses more than 8000)."""

Wakeup = Callable[[int, frozenset[str] | None], None]
"""Called with the highest delivery ``seq`` committed by another process and its parties (None: any party)."""


class WakeupChannel(PostgresBase):
    """NOTIFY at commit, LISTEN in a thread (see module docstring)."""

    instance: str = uuid.uuid4().hex
    """This process's name in the payloads (one per process: the class attribute is set at import)."""

    def notify_created(self, conn: psycopg.Connection[Row], created: list[Delivery]) -> None:
        """Inside the transaction that stored ``created``: queue the NOTIFY that its COMMIT sends."""
        parties: list[str] | None = sorted({d.party_id for d in created})
        payload = json.dumps({"from": self.instance, "seq": max(d.seq for d in created), "parties": parties})
        if len(payload) > PAYLOAD_MAX:
            parties = None
            payload = json.dumps({"from": self.instance, "seq": max(d.seq for d in created), "parties": None})
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))

    def delivery_head(self) -> int:
        """The highest delivery ``seq`` stored (0 when none)."""
        row = self.row("SELECT coalesce(max(seq), 0) FROM deliveries")
        return int(row[0]) if row else 0

    def listen_deliveries(self, wakeup: Wakeup) -> Callable[[], None]:
        """Start the listener thread calling ``wakeup`` for each other process's commit; returns its stop."""
        stop = threading.Event()
        thread = threading.Thread(target=self._listen, args=(wakeup, stop), name="forewarn-listen", daemon=True)
        thread.start()

        def stopper() -> None:
            stop.set()
            thread.join(timeout=5)

        return stopper

    def _listen(self, wakeup: Wakeup, stop: threading.Event) -> None:
        first = True
        while not stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    if not first:  # what was notified while the connection was down
                        wakeup(self.delivery_head(), None)
                    first = False
                    while not stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self._heard(note.payload, wakeup)
            except Exception:  # a lost connection: reconnect after a pause
                if not stop.is_set():
                    log.exception("listening for deliveries failed; reconnecting")
                    stop.wait(1.0)

    def _heard(self, payload: str, wakeup: Wakeup) -> None:
        doc = json.loads(payload)
        if doc.get("from") == self.instance:
            return
        parties = doc.get("parties")
        wakeup(int(doc["seq"]), None if parties is None else frozenset(parties))
