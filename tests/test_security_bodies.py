"""Bodies a JSON parser chokes on (issue 20): nesting deeper than the parser goes, integers of more digits than
Python converts, and bytes that are not UTF-8 get the documented error shape (422 ``invalid_input`` with
``details.errors[].field == "body"`` saying why), never an undocumented ``http_error`` or a 500, and change
nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api_support import World, make_world

BODIES = {
    "deep nesting": (b'{"id": "x", "activity_class": "transport", "volumes": ' + b"[" * 100_000 + b"]" * 100_000
                     + b"}", "too deeply"),
    "huge integer": (b'{"id": "x", "name": "X", "kind": "other", "n": ' + b"9" * 5000 + b"}", "too many digits"),
    "invalid UTF-8": (b'{"id": "x\xff\xfe", "name": "X"}', "not valid UTF-8"),
}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path)
    with w.client:
        yield w


@pytest.mark.parametrize("case", sorted(BODIES))
@pytest.mark.parametrize("path", ["/v1/operations", "/v1/parties", "/v1/sites", "/v1/check"])
def test_unparsable_bodies_get_the_documented_error(world: World, case: str, path: str) -> None:
    body, reason = BODIES[case]
    head = world.service.repo.ledger_head()
    r = world.client.post(path, headers=world.auth("admin") | {"Content-Type": "application/json"}, content=body)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_input" and error["request_id"]
    [problem] = error["details"]["errors"]
    assert problem["field"] == "body" and reason in problem["message"]
    assert world.service.repo.ledger_head() == head and world.service.repo.get_party("x") is None


def test_deep_nesting_in_a_track_feed_is_refused_whole(world: World) -> None:
    from tests.test_track_api import feeder

    headers = feeder(world, "usa", ["tracks:feed"]) | {"Content-Type": "application/json"}
    r = world.client.post("/v1/tracks/positions", headers=headers, content=b"[" * 100_000 + b"]" * 100_000)
    assert r.status_code == 422 and "too deeply" in r.text
