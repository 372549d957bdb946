"""Read and rejection amplification of the ledger (issue 20): 100 reads that release planning detail, and 50
forged signatures, must not write an entry each. Disclosures are aggregated per reader and period (every
distinct view still recorded), refused signatures per party and period (the first few in full, then the 10th,
100th ...; the count carried into the next period's first entry)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from forewarn.ledger.keys import key_id_of
from forewarn.service.ledger_tally import REJECTIONS_IN_FULL
from tests.api_support import World, make_world, volume
from tests.test_ledger_api import add_key, signed_headers

NOTICE = {"id": "usa-1", "activity_class": "transport", "volumes": [volume(38, 35)],
          "detail": {"purpose": "resupply run", "unit": "412 AEW"}}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path)
    with w.client:
        yield w


def _count(world: World, kind: str) -> int:
    return len(world.service.repo.find_ledger(kinds=[kind]))


def test_a_hundred_reads_of_released_detail_write_one_entry(world: World) -> None:
    c = world.client
    assert c.post("/v1/operations", headers=world.auth("usa"), json=NOTICE).status_code == 201
    fra = world.auth("fra")
    head_before, before = world.service.repo.ledger_head(), _count(world, "disclosure")
    for i in range(100):
        path = "/v1/operations" if i % 2 else "/v1/operations/usa-1"
        r = c.get(path, headers=fra)
        assert r.status_code == 200 and "resupply run" in r.text
    assert _count(world, "disclosure") - before == 1
    assert world.service.repo.ledger_head()[0] - head_before[0] == 1  # type: ignore[index]
    # new content is recorded at once, even in the same period
    amended = c.post("/v1/operations/usa-1/amend", headers=world.auth("usa"),
                     json={"version": 1, "detail": {"purpose": "medevac", "unit": "412 AEW"}})
    assert amended.status_code == 200, amended.text
    assert "medevac" in c.get("/v1/operations/usa-1", headers=fra).text
    assert _count(world, "disclosure") - before == 2
    # the next period: what fra keeps reading is recorded once more, with the repeats counted meanwhile
    world.clock.now += timedelta(seconds=world.service.settings.ledger_summary_period_s)
    for _ in range(10):
        c.get("/v1/operations/usa-1", headers=fra)
    entries = world.service.repo.find_ledger(kinds=["disclosure"])
    assert len(entries) - before == 3
    assert entries[-2].body["repeats"] == {"usa-1": 99}  # the 99 reads after the first, counted in the next entry
    assert entries[-1].body["repeats"] == {}
    assert entries[-1].body["operations"][0]["view"]["detail"] == {"purpose": "medevac"}
    # the audit still answers from the aggregated entries
    shown = world.service.ledger.shown("fra", "usa-1")
    assert [row["shown"]["detail"]["purpose"] for row in shown if row["kind"] == "disclosure"] == [
        "resupply run", "medevac", "medevac"]


def test_fifty_forged_signatures_write_a_bounded_number_of_entries(world: World) -> None:
    c = world.client
    usa = add_key(world, "usa")
    kid = key_id_of(usa.public_key())
    auth = world.auth("usa")
    body = {k: v for k, v in NOTICE.items() if k != "detail"}
    before = _count(world, "rejection")
    for i in range(50):
        forged = signed_headers(Ed25519PrivateKey.generate(), "usa", "/v1/operations", body, nonce=f"nonce-{i:04d}",
                                key_id=kid)
        assert c.post("/v1/operations", headers=auth | forged, json=body).status_code == 401
    written = world.service.repo.find_ledger(kinds=["rejection"])[before:]
    assert len(written) == REJECTIONS_IN_FULL + 1  # the first five in full, then the 10th
    assert [e.body["rejections_in_period"] for e in written] == [1, 2, 3, 4, 5, 10]
    assert c.get("/v1/operations", headers=auth).json() == []
    # the next period's first rejection carries the previous period's final count
    world.clock.now += timedelta(seconds=world.service.settings.ledger_summary_period_s)
    forged = signed_headers(Ed25519PrivateKey.generate(), "usa", "/v1/operations", body, nonce="nonce-next",
                            key_id=kid)
    assert c.post("/v1/operations", headers=auth | forged, json=body).status_code == 401
    last = world.service.repo.find_ledger(kinds=["rejection"])[-1]
    assert last.body["rejections_in_period"] == 1 and last.body["previous_period"]["rejections"] == 50
    assert world.service.ledger.verify().ok
