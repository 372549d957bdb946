"""Write paths answer "hidden like missing" (issue 20, MEDIUM): acting on another party's operation answers
exactly as acting on an operation that does not exist, and reusing an id another party holds answers exactly as
reusing one's own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.api_support import World, make_world, volume


@pytest.fixture
def world(tmp_path: Path) -> World:
    world = make_world(tmp_path)
    op = {"id": "rus-strike", "activity_class": "strike_area", "volumes": [volume(39, 36)]}
    assert world.client.post("/v1/operations", headers=world.auth("rus"), json=op).status_code == 201
    return world


def _answer(response: Any, operation_id: str) -> tuple[int, str]:
    """The status and error with the operation id masked (and the request id dropped): what must not differ
    between hidden and missing."""
    error = dict(response.json()["error"])
    error.pop("request_id", None)
    return response.status_code, json.dumps(error, sort_keys=True).replace(operation_id, "ID")


@pytest.mark.parametrize("action", ["cancel", "activate", "complete", "amend"])
def test_another_partys_operation_answers_like_a_missing_one(world: World, action: str) -> None:
    usa = world.auth("usa")
    body = {"version": 1, "volumes": [volume(39, 36)]} if action == "amend" else None
    hidden = world.client.post(f"/v1/operations/rus-strike/{action}", headers=usa, json=body)
    missing = world.client.post(f"/v1/operations/nothing-here/{action}", headers=usa, json=body)
    assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "not_found"
    assert _answer(hidden, "rus-strike") == _answer(missing, "nothing-here")
    assert world.service.repo.get_operation("rus-strike").state.value == "notified"  # type: ignore[union-attr]


def test_an_id_taken_by_another_party_tells_neither_owner_nor_state(world: World) -> None:
    from forewarn.core.model import Operation
    from forewarn.geo.volume import Volume4D

    planned = Operation(id="rus-plan", party_id="rus", activity_class="drone",
                        volumes=[Volume4D.model_validate(volume(40, 36))])
    world.service.plan(planned, world.clock.now)
    usa = world.auth("usa")
    answers = []
    for taken in ("rus-strike", "rus-plan"):
        op = {"id": taken, "activity_class": "tanker_track", "volumes": [volume(30, 30)]}
        response = world.client.post("/v1/operations", headers=usa, json=op)
        assert response.status_code == 409 and "another party" not in response.text, response.text
        answers.append(_answer(response, taken))
    assert answers[0] == answers[1]
    assert world.service.repo.get_operation("rus-strike").party_id == "rus"  # type: ignore[union-attr]
