"""Delivery use cases: a party's inbox, acknowledgement, escalation past the deadline, and the record of sends
(event streams and webhook attempts). Each write is one transaction under the service's writer lock, recorded in
the ledger; ``now`` injected."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta
from typing import Any

from forewarn.core.deliveries import escalation_lead, is_late, lead_at_first_send
from forewarn.core.records import Delivery
from forewarn.errors import NotFound
from forewarn.ledger.keys import PartySignature
from forewarn.service.evaluation import require_aware
from forewarn.service.ledger import Draft
from forewarn.service.notices import Forewarn
from forewarn.service.submissions import Submission


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
        original too. A delivery not yet recorded as sent is recorded delivered first (see
        :meth:`_deliver_before_ack`), so the ledger and a receipt never show an acknowledgement before its delivery.
        Repeating an acknowledgement changes nothing. Another party's delivery is not found.
        A ``party_signature`` covers ``POST /v1/deliveries/ID/ack`` and is kept with the ledger entry."""
        require_aware(now)
        signed = self.service.ledger.accept(party_signature, party_id, Submission("acknowledge", delivery_id), now)
        with self.service.committing(), self.repo.transaction():
            delivery = self.repo.get_delivery(delivery_id)
            if delivery is None or delivery.party_id != party_id:
                raise NotFound(f"no delivery {delivery_id} for party {party_id}", {"delivery_id": delivery_id})
            if delivery.acked_at is not None:
                return delivery
            delivery = self._deliver_before_ack(delivery, now)
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

    def _deliver_before_ack(self, delivery: Delivery, now: datetime) -> Delivery:
        """Inside the acknowledgement's transaction: a delivery with no recorded delivery reached the party anyway
        (an acknowledgement is proof of receipt): record it delivered, in the ledger before the acknowledgement, at
        the time an event stream sent it if one did and it is not flushed yet, else at ``now`` via the inbox."""
        if delivery.delivered_at is not None:
            return delivery
        with self._streamed_lock:
            streamed = self._streamed.pop(delivery.id, None)
        at, via = (streamed, "stream") if streamed is not None else (now, "inbox")
        update = self._first_send(delivery, at) | {"delivered_at": at}
        delivered = delivery.model_copy(update=update)
        self.repo.update_delivery(delivered)
        self.service.ledger.append_many(
            self._send_entries(delivered, at, via, sent="first_sent_at" in update, delivered=True), now)
        return delivered

    def escalate_overdue(self, now: datetime) -> list[Delivery]:
        """Escalate every primary delivery past its acknowledgement deadline over the backup channel; recorded."""
        require_aware(now)
        created: list[Delivery] = []
        if not self.repo.overdue_acknowledgements(now, limit=1):
            # a read first (WAL: no lock, no write transaction): the worker asks after every commit
            return created
        with self.service.committing(), self.repo.transaction():
            for delivery in self.repo.overdue_acknowledgements(now):
                party = self.repo.get_party(delivery.party_id)
                lead = escalation_lead(delivery, now)
                late = is_late(lead, delivery.min_notice_s) if lead is not None else delivery.late
                payload = dict(delivery.payload) | {
                    "type": "escalation", "escalation_of": delivery.id,
                    "deadline": delivery.ack_deadline.isoformat() if delivery.ack_deadline else None,
                }
                if lead is not None:
                    payload |= {"lead_time_s": lead, "late": late}
                backup = Delivery(
                    id=str(uuid.uuid4()), notice_id=delivery.notice_id, party_id=delivery.party_id, channel="backup",
                    reason="escalation", escalation_of=delivery.id, payload=payload, created_at=now,
                    next_attempt_at=now if party is not None and party.backup_webhook_url else None,
                    lead_time_s=lead, min_notice_s=delivery.min_notice_s, late=late,
                )
                self.repo.add_deliveries([backup])
                self.repo.update_delivery(delivery.model_copy(update={"escalated_at": now}))
                created.append(backup)
                origin = self.repo.find_ledger(kinds=["delivery_created"], subject=delivery.id)
                first = origin[0].body if origin else {}
                self.service.ledger.append("escalation", delivery.id, {
                    "delivery_id": delivery.id, "escalation_id": backup.id, "ack_deadline": delivery.ack_deadline,
                }, now, party_id=delivery.party_id)
                self.service.ledger.record_deliveries([backup], int(first.get("origin_seq") or 0), now,
                                                      operation_id=first.get("operation_id"),
                                                      site_id=first.get("site_id"))
            self.service.commits.announce(d.party_id for d in created)
        return created

    def _first_send(self, delivery: Delivery, now: datetime,
                    pending: dict[str, Delivery] | None = None) -> dict[str, Any]:
        """On the first send, the lead time becomes the operation's start minus the first send of the notice to
        the party: this moment, or the earlier send of its original or escalation (late re-checked). ``pending``:
        deliveries changed in the same transaction but not yet written, by id."""
        update: dict[str, Any] = {}
        if delivery.first_sent_at is None:
            update["first_sent_at"] = now
            if delivery.lead_time_s is not None:
                lead = lead_at_first_send(delivery, now, self._sibling(delivery, pending or {}))
                update |= {"lead_time_s": lead, "late": is_late(lead, delivery.min_notice_s)}
        return update

    def _sibling(self, delivery: Delivery, pending: dict[str, Delivery]) -> Delivery | None:
        """The party's other delivery of the same notice: the original of an escalation, or the escalation of an
        escalated original (from the ledger's escalation entry); ``pending`` first, then the store."""
        other = delivery.escalation_of
        if other is None and delivery.escalated_at is not None:
            entries = self.repo.find_ledger(kinds=["escalation"], subject=delivery.id)
            other = str(entries[0].body.get("escalation_id")) if entries else None
        if other is None:
            return None
        return pending.get(other) or self.repo.get_delivery(other)

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
            with self.service.committing(), self.repo.transaction():
                # times and state only: the payloads (the bulk of each row) are not needed to record a send
                stored = self.repo.get_deliveries([delivery_id for delivery_id, _ in chunk], payloads=False)
                changed: list[Delivery] = []
                drafts: list[Draft] = []
                for delivery_id, at in chunk:
                    current = stored.get(delivery_id)
                    if current is None or current.delivered_at is not None:
                        continue
                    update = self._first_send(current, at, {c.id: c for c in changed}) | {"delivered_at": at}
                    changed.append(current.model_copy(update=update))
                    drafts += self._send_entries(current, at, "stream", sent="first_sent_at" in update, delivered=True)
                # one UPDATE statement and one ledger batch (one head read, one INSERT, one checkpoint) per chunk
                self.repo.update_deliveries(changed)
                self.service.ledger.append_many(drafts, max(at for _, at in chunk))
                recorded += len(changed)
        return recorded

    def record_attempt(self, delivery: Delivery, ok: bool, error: str | None, now: datetime) -> Delivery:
        """A webhook attempt: on success the delivery is delivered; else retried with exponential backoff."""
        with self.service.committing(), self.repo.transaction():
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
