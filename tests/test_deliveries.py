"""The outbox and the delivery desk: who gets what, acknowledgements, escalation, retries, lead times."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from forewarn.core.model import Agreement, Party, PlanningDetail, SeparationMinima, Subscription
from forewarn.core.records import Delivery
from forewarn.errors import NotFound
from forewarn.ledger.chain import utc_text
from forewarn.ledger.receipts import check_receipt
from forewarn.service.desk import DeliveryDesk
from forewarn.service.notices import Forewarn
from forewarn.service.receipts import build_receipt
from forewarn.service.settings import Settings
from forewarn.store import SQLiteRepository
from tests.builders import circle, operation
from tests.conftest import T0

NOW = T0 - timedelta(hours=3)


@pytest.fixture
def svc(db_path: Path) -> Forewarn:
    s = Forewarn(SQLiteRepository(db_path), Settings(db=db_path, webhook_allow_http=True, webhook_allow_private=True))
    s.put_party(Party(id="usa", name="Coalition"))
    s.put_party(Party(id="rus", name="Russia", webhook_url="http://127.0.0.1:9/hook"))
    s.put_party(Party(id="fra", name="France", backup_webhook_url="http://127.0.0.1:9/duty"))
    s.put_party(Party(id="nobody", name="No agreement"))
    minima = SeparationMinima(horizontal_m=9260, vertical_m=305, time_s=600)
    s.put_agreement(Agreement(id="mou", name="MoU", parties=["usa", "rus", "fra"], default_minima=minima,
                              min_notice_s=3600, ack_deadline_s=900))
    s.put_agreement(Agreement(id="usa-fra", name="sharing", parties=["usa", "fra"], default_minima=minima,
                              sharing="planning_detail", released_fields={"purpose": ["fra"], "unit": ["fra"]},
                              min_notice_s=1800, ack_deadline_s=600))
    return s


def test_every_bound_party_gets_what_the_policy_lets_it_see(svc: Forewarn) -> None:
    detail = PlanningDetail(purpose="close air support", unit="strike cell", call_signs=["DUDE01"], notes="secret")
    svc.notify(operation("usa-op", "usa", [circle(38.0, 35.0)], detail=detail), NOW)
    deliveries = {d.party_id: d for d in svc.repo.list_deliveries()}
    assert set(deliveries) == {"rus", "fra"}  # the notifier and the party with no agreement get nothing
    fra, rus = deliveries["fra"].payload["operation"], deliveries["rus"].payload["operation"]
    assert fra["detail"] == {"purpose": "close air support", "unit": "strike cell"}
    assert "detail" not in rus and rus["volumes"] == fra["volumes"]
    # the strictest deadline (600 s under usa-fra) and the strictest minimum notice (3600 s under the MoU)
    assert deliveries["fra"].ack_deadline == NOW + timedelta(seconds=600)
    assert deliveries["fra"].min_notice_s == 3600 and deliveries["fra"].late is False
    assert deliveries["rus"].next_attempt_at == NOW and deliveries["fra"].next_attempt_at is None


def test_affected_party_gets_its_conflicts_and_resolutions(svc: Forewarn) -> None:
    svc.notify(operation("fra-op", "fra", [circle(38.0, 35.0)]), NOW)
    svc.notify(operation("rus-op", "rus", [circle(38.02, 35.0)], cls="cruise_missile_corridor"),
               NOW + timedelta(minutes=1))
    to_fra = [d for d in svc.repo.list_deliveries("fra") if d.payload["from_party"] == "rus"]
    [d] = to_fra
    assert d.payload["affected"] and [c["b"]["operation_id"] for c in d.payload["conflicts"]] == ["fra-op"]
    to_usa = [x for x in svc.repo.list_deliveries("usa") if x.payload["from_party"] == "rus"]
    assert to_usa[0].payload["conflicts"] == [] and "no adjustment needed" in to_usa[0].payload["message"]


def test_late_notice_is_marked_late_for_the_receiver(svc: Forewarn) -> None:
    svc.notify(operation("soon", "usa", [circle(38.0, 35.0, start_h=0, end_h=1)]), T0 - timedelta(minutes=20))
    assert all(d.late and d.payload["late"] for d in svc.repo.list_deliveries())


def test_acknowledge_escalate_and_acknowledge_the_escalation(svc: Forewarn) -> None:
    desk = DeliveryDesk(svc)
    svc.notify(operation("op", "usa", [circle(38.0, 35.0)]), NOW)
    fra = svc.repo.list_deliveries("fra")[0]
    rus = svc.repo.list_deliveries("rus")[0]
    with pytest.raises(NotFound):
        desk.acknowledge(fra.id, "rus", NOW)  # another party's delivery is not even found
    acked = desk.acknowledge(rus.id, "rus", NOW + timedelta(minutes=1))
    assert acked.acked_at == NOW + timedelta(minutes=1)
    assert desk.acknowledge(rus.id, "rus", NOW + timedelta(minutes=5)).acked_at == acked.acked_at
    assert desk.escalate_overdue(NOW + timedelta(minutes=9)) == []  # France's deadline is 10 min
    [backup] = desk.escalate_overdue(NOW + timedelta(minutes=11))
    assert backup.party_id == "fra" and backup.channel == "backup" and backup.escalation_of == fra.id
    assert backup.next_attempt_at is not None  # France has a backup webhook
    assert svc.repo.get_delivery(fra.id).escalated_at == NOW + timedelta(minutes=11)  # type: ignore[union-attr]
    assert desk.escalate_overdue(NOW + timedelta(hours=1)) == []  # escalated once only
    desk.acknowledge(backup.id, "fra", NOW + timedelta(minutes=12))
    assert svc.repo.get_delivery(fra.id).acked_at == NOW + timedelta(minutes=12)  # type: ignore[union-attr]


def test_escalation_survives_a_restart(svc: Forewarn, db_path: Path) -> None:
    svc.notify(operation("op", "usa", [circle(38.0, 35.0)]), NOW)
    restarted = Forewarn(SQLiteRepository(db_path),
                         Settings(db=db_path, webhook_allow_http=True, webhook_allow_private=True))
    assert {d.party_id for d in DeliveryDesk(restarted).escalate_overdue(NOW + timedelta(hours=1))} == {"rus", "fra"}


def test_webhook_attempts_back_off_and_lead_time_counts_from_first_send(svc: Forewarn) -> None:
    desk = DeliveryDesk(svc)
    svc.notify(operation("op", "usa", [circle(38.0, 35.0, start_h=1, end_h=2)]), T0 - timedelta(hours=2))
    d = svc.repo.list_deliveries("rus")[0]
    assert d.lead_time_s == 3 * 3600
    t1 = T0 - timedelta(minutes=90)
    failed = desk.record_attempt(d, ok=False, error="connection refused", now=t1)
    assert failed.attempts == 1 and failed.next_attempt_at == t1 + timedelta(seconds=0.5)
    assert failed.first_sent_at == t1 and failed.lead_time_s == 2.5 * 3600 and not failed.late
    failed2 = desk.record_attempt(failed, ok=False, error="503", now=t1 + timedelta(seconds=1))
    assert failed2.next_attempt_at == t1 + timedelta(seconds=2)
    ok = desk.record_attempt(failed2, ok=True, error=None, now=T0 + timedelta(minutes=10))
    assert ok.delivered_at == T0 + timedelta(minutes=10) and ok.next_attempt_at is None and ok.attempts == 3
    assert ok.first_sent_at == t1  # the lead time is from the FIRST send
    assert svc.repo.due_webhook_deliveries(T0 + timedelta(days=1)) == []


def test_subscriptions_add_recipients_but_never_widen_what_they_see(svc: Forewarn) -> None:
    # a civil-style agreement: only affected or subscribed parties are told
    svc.put_party(Party(id="uss-a", name="USS A"))
    svc.put_party(Party(id="uss-b", name="USS B"))
    svc.put_agreement(Agreement(id="utm", name="UTM", parties=["uss-a", "uss-b"], deliver="affected_or_subscribed"))
    svc.notify(operation("a1", "uss-a", [circle(7.0, 47.0, 500)]), NOW)
    assert svc.repo.list_deliveries("uss-b") == []
    svc.repo.put_subscription(Subscription(id="b-area", party_id="uss-b", volume=circle(7.1, 47.0, 20_000)))
    svc.repo.put_subscription(Subscription(id="snoop", party_id="nobody", volume=circle(7.1, 47.0, 20_000)))
    svc.notify(operation("a2", "uss-a", [circle(7.1, 47.0, 500)]), NOW)
    [d] = svc.repo.list_deliveries("uss-b")
    assert d.reason == "subscription" and d.payload["operation"]["id"] == "a2"
    assert svc.repo.list_deliveries("nobody") == []  # subscribed, but bound by no agreement: sees nothing
    svc.notify(operation("a3", "uss-a", [circle(7.5, 47.0, 500)]), NOW)  # outside the subscription
    assert len(svc.repo.list_deliveries("uss-b")) == 1
    svc.notify(operation("b1", "uss-b", [circle(7.5, 47.0, 500)]), NOW)  # conflicts with a3: a is affected
    [to_a] = svc.repo.list_deliveries("uss-a")
    assert to_a.reason == "agreement" and to_a.payload["affected"] is True


def test_streamed_sends_are_recorded_in_one_flush(svc: Forewarn) -> None:
    desk = DeliveryDesk(svc)
    svc.notify(operation("op", "usa", [circle(38.0, 35.0, start_h=1, end_h=2)]), T0 - timedelta(hours=2))
    d = svc.repo.list_deliveries("fra")[0]
    desk.note_streamed(d, T0 - timedelta(minutes=30))
    desk.note_streamed(d, T0)  # a second stream of the same delivery does not move the first send
    assert svc.repo.get_delivery(d.id).delivered_at is None  # type: ignore[union-attr]
    assert desk.flush_streamed() == 1 and desk.flush_streamed() == 0
    stored = svc.repo.get_delivery(d.id)
    assert stored is not None and stored.delivered_at == stored.first_sent_at == T0 - timedelta(minutes=30)
    assert stored.lead_time_s == 1.5 * 3600 and not stored.late  # 90 min lead against a 1 h minimum notice


def test_a_flush_records_each_send_at_its_own_time_one_batch_per_chunk(svc: Forewarn,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DeliveryDesk, "FLUSH_CHUNK", 2)
    desk = DeliveryDesk(svc)
    for k in range(3):
        svc.notify(operation(f"op{k}", "usa", [circle(38.0 + k, 35.0, start_h=1, end_h=2)]), T0 - timedelta(hours=2))
    pending = svc.repo.list_deliveries("fra") + svc.repo.list_deliveries("rus")  # six deliveries: three chunks
    sent_at = {d.id: T0 - timedelta(minutes=50 - 7 * i) for i, d in enumerate(pending)}
    already = svc.repo.get_delivery(pending[0].id)
    assert already is not None
    svc.repo.update_deliveries([already.model_copy(update={"delivered_at": T0 - timedelta(hours=1)})])
    head = svc.repo.ledger_head()
    assert head is not None
    for d in pending:
        desk.note_streamed(d, sent_at[d.id])
    assert desk.flush_streamed() == len(pending) - 1  # the one already delivered is left as it is
    for d in pending[1:]:
        stored = svc.repo.get_delivery(d.id)
        assert stored is not None and stored.delivered_at == stored.first_sent_at == sent_at[d.id]
        assert stored.lead_time_s == ((T0 + timedelta(hours=1)) - sent_at[d.id]).total_seconds()
    new_head = svc.repo.ledger_head()
    assert new_head is not None
    entries = svc.repo.ledger_entries(list(range(head[0] + 1, new_head[0] + 1)))
    assert [e.subject for e in entries] == [d.id for d in pending[1:]]
    assert all(e.kind == "delivery_delivered" and e.at == utc_text(sent_at[e.subject])
               and e.body["delivered_at"] == e.body["first_sent_at"] for e in entries)
    # chunks of two (the first holding the skipped delivery): each one batch, its last entry signed
    assert [e.service_signature is not None for e in entries] == [True, False, True, False, True]
    report = svc.ledger.verify()
    assert report.ok and report.head_seq == entries[-1].seq


def test_stream_hub_wakes_only_the_parties_that_got_deliveries() -> None:
    import asyncio

    from forewarn.http.runtime import StreamHub

    async def scenario() -> tuple[bool, bool]:
        hub = StreamHub()
        a, b = hub.register("a"), hub.register("b")
        hub.notify(frozenset({"a"}))
        await asyncio.sleep(0)
        woke = (a[1].is_set(), b[1].is_set())
        hub.unregister(a)
        hub.unregister(b)
        return woke

    assert asyncio.run(scenario()) == (True, False)


# ------------------------------------------------ lead time: operation start minus the FIRST send to that party
START = T0 + timedelta(hours=1)  # the start of the operations filed below (start_h=1)


def _file_and_escalate(svc: Forewarn, desk: DeliveryDesk) -> tuple[str, str]:
    """File an operation at T0 - 2 h; escalate France's unacknowledged primary 11 min later: (primary, backup)."""
    svc.notify(operation("op", "usa", [circle(38.0, 35.0, start_h=1, end_h=2)]), T0 - timedelta(hours=2))
    primary = svc.repo.list_deliveries("fra")[0]
    escalated = desk.escalate_overdue(T0 - timedelta(hours=2) + timedelta(minutes=11))
    [backup] = [b for b in escalated if b.party_id == "fra"]
    return primary.id, backup.id


def _stored(svc: Forewarn, delivery_id: str) -> Delivery:
    got = svc.repo.get_delivery(delivery_id)
    assert got is not None
    return got


def test_a_delivery_and_its_escalation_sent_together_have_one_lead_time(svc: Forewarn) -> None:
    desk = DeliveryDesk(svc)
    primary, backup = _file_and_escalate(svc, desk)
    sent = T0 - timedelta(minutes=30)
    desk.note_streamed(_stored(svc, primary), sent)
    desk.note_streamed(_stored(svc, backup), sent)
    assert desk.flush_streamed() == 2
    expected = (START - sent).total_seconds()
    assert _stored(svc, primary).lead_time_s == expected
    assert _stored(svc, backup).lead_time_s == expected


def test_an_escalation_keeps_the_lead_time_of_the_first_send_to_that_party(svc: Forewarn) -> None:
    desk = DeliveryDesk(svc)
    svc.notify(operation("op", "usa", [circle(38.0, 35.0, start_h=1, end_h=2)]), T0 - timedelta(hours=2))
    rus = svc.repo.list_deliveries("rus")[0]
    first = T0 - timedelta(hours=2) + timedelta(minutes=1)
    desk.record_attempt(rus, ok=True, error=None, now=first)  # Russia's primary, sent at once
    [backup] = [b for b in desk.escalate_overdue(T0 - timedelta(minutes=100)) if b.party_id == "rus"]
    expected = (START - first).total_seconds()
    assert backup.lead_time_s == expected and backup.payload["lead_time_s"] == expected  # before its own send
    desk.note_streamed(backup, T0 - timedelta(minutes=10))
    desk.flush_streamed()
    assert _stored(svc, backup.id).lead_time_s == expected == _stored(svc, rus.id).lead_time_s


def test_a_primary_sent_after_its_escalation_takes_the_escalation_lead_time(svc: Forewarn) -> None:
    desk = DeliveryDesk(svc)
    primary, backup = _file_and_escalate(svc, desk)
    backup_sent = T0 - timedelta(minutes=40)
    desk.record_attempt(_stored(svc, backup), ok=True, error=None, now=backup_sent)
    expected = (START - backup_sent).total_seconds()
    assert _stored(svc, backup).lead_time_s == expected
    desk.note_streamed(_stored(svc, primary), T0 - timedelta(minutes=5))
    desk.flush_streamed()
    assert _stored(svc, primary).lead_time_s == expected and not _stored(svc, primary).late


# ------------------------------------------------ an acknowledgement never precedes the delivery it acknowledges
def _kinds_in_receipt(svc: Forewarn, delivery_id: str) -> list[str]:
    """The receipt's entries about the delivery (its own and the acknowledgement), in the receipt's order."""
    receipt = build_receipt(svc.ledger, delivery_id)
    assert check_receipt(receipt).valid
    return [e["kind"] for e in receipt["entries"] if e["subject"] == delivery_id]


def test_acknowledging_a_delivery_never_sent_marks_it_delivered_first(svc: Forewarn) -> None:
    desk = DeliveryDesk(svc)
    svc.notify(operation("op", "usa", [circle(38.0, 35.0, start_h=1, end_h=2)]), T0 - timedelta(hours=2))
    fra = svc.repo.list_deliveries("fra")[0]  # France has no webhook and no stream: read from its inbox
    at = T0 - timedelta(minutes=90)
    desk.acknowledge(fra.id, "fra", at)
    stored = _stored(svc, fra.id)
    assert stored.delivered_at == stored.first_sent_at == stored.acked_at == at
    assert stored.lead_time_s == (START - at).total_seconds()
    assert _kinds_in_receipt(svc, fra.id) == ["delivery_created", "delivery_delivered", "acknowledgement"]
    assert check_receipt(build_receipt(svc.ledger, fra.id)).delivered_at is not None


def test_a_streamed_send_not_yet_recorded_is_recorded_before_the_acknowledgement(svc: Forewarn) -> None:
    desk = DeliveryDesk(svc)
    svc.notify(operation("op", "usa", [circle(38.0, 35.0, start_h=1, end_h=2)]), T0 - timedelta(hours=2))
    fra = svc.repo.list_deliveries("fra")[0]
    streamed = T0 - timedelta(minutes=100)
    desk.note_streamed(fra, streamed)  # the worker has not flushed it yet
    desk.acknowledge(fra.id, "fra", T0 - timedelta(minutes=99))
    assert desk.flush_streamed() == 0
    stored = _stored(svc, fra.id)
    assert stored.delivered_at == stored.first_sent_at == streamed
    assert _kinds_in_receipt(svc, fra.id) == ["delivery_created", "delivery_delivered", "acknowledgement"]
