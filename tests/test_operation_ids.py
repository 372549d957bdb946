"""Operation ids a party cannot have taken from it (issue 20): a filing without an id gets one chosen by the service
(``op-`` and 32 hex digits, from a random UUID), which no other party can guess and file first. Client-chosen ids
remain one namespace across parties (docs/security.md says what that discloses); subscription ids are per party."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.api_support import World, make_world, volume


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path)


def test_a_filing_without_an_id_gets_an_unguessable_one(world: World) -> None:
    c, usa = world.client, world.auth("usa")
    body = {"activity_class": "transport", "volumes": [volume(38, 35)]}
    first = c.post("/v1/operations", headers=usa, json=body)
    second = c.post("/v1/operations", headers=usa, json=body)
    assert first.status_code == second.status_code == 201, first.text
    ids = [first.json()["operation_id"], second.json()["operation_id"]]
    assert all(re.fullmatch(r"op-[0-9a-f]{32}", i) for i in ids) and ids[0] != ids[1]
    assert c.get(f"/v1/operations/{ids[0]}", headers=usa).json()["party_id"] == "usa"
    # a retry under the same Idempotency-Key answers with the id of the first filing, and files nothing new
    key = {"Idempotency-Key": "k-1"}
    again = [c.post("/v1/operations", headers=usa | key, json=body).json()["operation_id"] for _ in range(2)]
    assert again[0] == again[1]
    assert len(world.service.repo.list_operations(party_id="usa")) == 3


def test_subscription_ids_are_per_party(world: World) -> None:
    """Another party holding an id changes nothing for you: the same answer as for a free id, and theirs is kept."""
    c, fra, rus = world.client, world.auth("fra"), world.auth("rus")
    assert c.post("/v1/subscriptions", headers=fra, json={"id": "s1", "volume": volume(38, 35)}).status_code == 201
    taken = c.post("/v1/subscriptions", headers=rus, json={"id": "s1", "volume": volume(39, 36)})
    free = c.post("/v1/subscriptions", headers=rus, json={"id": "s2", "volume": volume(39, 36)})
    assert taken.status_code == free.status_code == 201
    assert [s["volume"]["footprint"]["center"] for s in c.get("/v1/subscriptions", headers=fra).json()] == [[38, 35]]
    assert c.delete("/v1/subscriptions/s1", headers=rus).status_code == 204
    assert [s["id"] for s in c.get("/v1/subscriptions", headers=fra).json()] == ["s1"]
