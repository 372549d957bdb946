"""Identifiers have one definition (:mod:`forewarn.core.ids`): the domain models, the HTTP request bodies, the
path and query parameters and the page's form accept exactly the same ids."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

import forewarn
from forewarn.core.ids import ID_PATTERN, IDENTIFIER
from forewarn.core.model import Party
from forewarn.http.schemas import OperationIn, SiteIn, SubscriptionIn
from tests.api_support import make_world, volume

SRC = Path(forewarn.__file__).parent
GOOD = ["a", "co-isr-1", "fr.package:2", "9_x", "a" * 64]
BAD = ["", "A", "-x", "has space", "é", "a" * 65, "x/y", "x<script>"]


@pytest.mark.parametrize("value", GOOD + BAD)
def test_models_and_request_bodies_agree_with_the_pattern(value: str) -> None:
    ok = IDENTIFIER.match(value) is not None
    assert ok == (value in GOOD)
    bodies = [
        lambda: Party(id=value, name="x"),
        lambda: OperationIn(id=value, activity_class="isr_orbit", volumes=[volume(39.0, 36.0)]),
        lambda: SiteIn(id=value, name="x", point=(39.0, 36.0)),
        lambda: SubscriptionIn(id=value, volume=volume(39.0, 36.0)),
    ]
    for build in bodies:
        if ok:
            build()
        else:
            with pytest.raises(ValidationError):
                build()


def test_path_and_query_ids_are_checked_against_the_pattern(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    heads = world.auth("usa")
    bad = world.client.get("/v1/operations/Not%20An%20Id", headers=heads)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_input"
    assert world.client.get("/v1/operations/not-an-op", headers=heads).status_code == 404
    assert world.client.post("/v1/deliveries/BAD!/ack", headers=heads).status_code == 422
    assert world.client.delete("/v1/subscriptions/BAD!", headers=heads).status_code == 422
    assert world.client.get("/v1/operations", params={"party": "USA"}, headers=heads).status_code == 422
    assert world.client.get("/v1/operations", params={"party": "usa"}, headers=heads).status_code == 200
    admin = world.auth("admin")
    assert world.client.post("/v1/parties/BAD!/credentials", headers=admin, json={}).status_code == 422
    assert world.client.get("/v1/reports/2015-11-17", params={"party": "Bad"}, headers=admin).status_code == 422


def test_the_openapi_schema_states_the_pattern_of_path_ids(tmp_path: Path) -> None:
    schema = make_world(tmp_path).client.get("/openapi.json").json()
    params = schema["paths"]["/v1/operations/{operation_id}"]["get"]["parameters"]
    assert [p["schema"].get("pattern") for p in params if p["name"] == "operation_id"] == [ID_PATTERN]


def test_the_pages_form_uses_the_same_pattern() -> None:
    """The page's operation-id field (an HTML ``pattern``, anchored by the browser, ``-`` escaped for the
    ``v`` flag) is the same language as :data:`ID_PATTERN`."""
    page = (SRC / "web" / "static" / "index.html").read_text(encoding="utf-8")
    found = re.search(r'id="op-id"[^>]*pattern="([^"]+)"', page)
    assert found is not None
    assert "^" + found.group(1).replace("\\-", "-") + "$" == ID_PATTERN


def test_the_pattern_is_written_once() -> None:
    """No module but :mod:`forewarn.core.ids` spells the pattern out (the others import it)."""
    spelled = [str(path.relative_to(SRC)) for path in sorted(SRC.rglob("*.py"))
               if "[a-z0-9][a-z0-9_.:" in path.read_text(encoding="utf-8")]
    assert spelled == ["core/ids.py"]
