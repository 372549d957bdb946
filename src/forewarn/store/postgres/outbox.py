"""Deliveries, the transactional outbox, in PostgreSQL.

``seq`` is an identity column; since every write transaction holds the writer lock until it ends
(:mod:`forewarn.store.postgres.connection`), sequence numbers are handed out in commit order.
:meth:`OutboxTables.take_due_webhook_deliveries` claims due webhooks with ``FOR UPDATE SKIP LOCKED`` so that
several workers (threads or processes) never take the same attempt.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson

from forewarn.core.records import Delivery
from forewarn.store.postgres.connection import PostgresBase, Row

_COLUMNS = ("seq, id, notice_id, party_id, channel, reason, escalation_of, payload::text, created_at, first_sent_at, "
            "delivered_at, acked_at, ack_deadline, escalated_at, attempts, next_attempt_at, last_error, lead_time_s, "
            "min_notice_s, late")
_NAMES = tuple(c.strip().removesuffix("::text") for c in _COLUMNS.split(","))
_STATE_COLUMNS = _COLUMNS.replace(" payload::text,", " '{}' AS payload,")
_INSERT = ("INSERT INTO deliveries(id, notice_id, party_id, channel, reason, escalation_of, payload, created_at, "
           "ack_deadline, next_attempt_at, lead_time_s, min_notice_s, late) VALUES ")
_ROW = "(%s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s, %s)"
_TAKEN = ", ".join("due.next_attempt_at" if c.strip() == "next_attempt_at" else "d." + c.strip()
                   for c in _COLUMNS.split(","))
"""The delivery columns as they were before a claim moved ``next_attempt_at``."""
_UPDATE = ("UPDATE deliveries SET first_sent_at = %s, delivered_at = %s, acked_at = %s, escalated_at = %s, "
           "attempts = %s, next_attempt_at = %s, last_error = %s, lead_time_s = %s, late = %s WHERE id = %s")


def _delivery(row: Row) -> Delivery:
    data: dict[str, Any] = dict(zip(_NAMES, row, strict=True))
    data["payload"] = orjson.loads(data["payload"])
    return Delivery.model_validate(data)


def _state(d: Delivery) -> tuple[object, ...]:
    return (d.first_sent_at, d.delivered_at, d.acked_at, d.escalated_at, d.attempts, d.next_attempt_at, d.last_error,
            d.lead_time_s, d.late, d.id)


class OutboxTables(PostgresBase):
    """The deliveries table (see module docstring)."""

    def add_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        """Store deliveries in one INSERT; with :attr:`delivery_hooks`, they are handed to the hooks with their
        ``seq`` once the transaction commits."""
        if not deliveries:
            return
        params: list[object] = []
        for d in deliveries:
            params += [d.id, d.notice_id, d.party_id, d.channel, d.reason, d.escalation_of,
                       orjson.dumps(d.payload).decode(), d.created_at, d.ack_deadline, d.next_attempt_at,
                       d.lead_time_s, d.min_notice_s, d.late]
        sql = _INSERT + ", ".join([_ROW] * len(deliveries)) + " RETURNING id, seq"
        with self.transaction():
            seqs = dict(self._local.conn.execute(sql, params).fetchall())
            if self.delivery_hooks:
                self._local.created.extend(d.model_copy(update={"seq": int(seqs[d.id])}) for d in deliveries)

    def get_delivery(self, delivery_id: str) -> Delivery | None:
        row = self.row(f"SELECT {_COLUMNS} FROM deliveries WHERE id = %s", (delivery_id,))
        return _delivery(row) if row else None

    def get_deliveries(self, delivery_ids: Sequence[str], *, payloads: bool = True) -> dict[str, Delivery]:
        out: dict[str, Delivery] = {}
        ids = list(dict.fromkeys(delivery_ids))
        columns = _COLUMNS if payloads else _STATE_COLUMNS
        for start in range(0, len(ids), 500):
            for row in self.rows(f"SELECT {columns} FROM deliveries WHERE id = ANY(%s)", (ids[start:start + 500],)):
                d = _delivery(row)
                out[d.id] = d
        return out

    def list_deliveries(self, party_id: str | None = None, after_seq: int = 0, channel: str | None = None,
                        limit: int = 1000) -> list[Delivery]:
        sql, params = f"SELECT {_COLUMNS} FROM deliveries WHERE seq > %s", list[object]([after_seq])
        if party_id is not None:
            sql += " AND party_id = %s"
            params.append(party_id)
        if channel is not None:
            sql += " AND channel = %s"
            params.append(channel)
        return [_delivery(r) for r in self.rows(sql + " ORDER BY seq LIMIT %s", [*params, limit])]

    def update_delivery(self, delivery: Delivery) -> None:
        self.execute(_UPDATE, _state(delivery))

    def update_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        self.execute_many(_UPDATE, [_state(d) for d in deliveries])

    def due_webhook_deliveries(self, now: datetime, limit: int = 100) -> list[Delivery]:
        rows = self.rows(f"SELECT {_COLUMNS} FROM deliveries WHERE delivered_at IS NULL AND next_attempt_at <= %s "
                         "ORDER BY seq LIMIT %s", (now, limit))
        return [_delivery(r) for r in rows]

    def take_due_webhook_deliveries(self, now: datetime, lease: timedelta, limit: int = 100) -> list[Delivery]:
        """Claim undelivered deliveries whose webhook attempt is due: their ``next_attempt_at`` moves to ``now +
        lease`` in the same statement, so no other worker takes them until the lease runs out (a worker that dies
        mid-attempt is retried after it). Rows another worker is claiming are skipped (``SKIP LOCKED``), not
        waited for. Returned as they were before the claim (``next_attempt_at`` = when the attempt was due)."""
        if lease <= timedelta(0):
            raise ValueError("lease must be positive")
        if not 1 <= limit <= 10_000:
            raise ValueError("limit must be within 1..10000")
        with self._pool.connection() as conn:  # its own short transaction, outside the writer lock
            rows = conn.execute(
                f"WITH due AS (SELECT seq, next_attempt_at FROM deliveries WHERE delivered_at IS NULL "
                f"AND next_attempt_at <= %s ORDER BY seq LIMIT %s FOR UPDATE SKIP LOCKED) "
                f"UPDATE deliveries d SET next_attempt_at = %s FROM due WHERE d.seq = due.seq "
                f"RETURNING {_TAKEN}",
                (now, limit, now + lease)).fetchall()
        return sorted((_delivery(r) for r in rows), key=lambda d: d.seq)

    def overdue_acknowledgements(self, now: datetime, limit: int = 100) -> list[Delivery]:
        rows = self.rows(f"SELECT {_COLUMNS} FROM deliveries WHERE channel = 'primary' AND acked_at IS NULL "
                         "AND escalated_at IS NULL AND ack_deadline <= %s ORDER BY seq LIMIT %s", (now, limit))
        return [_delivery(r) for r in rows]
