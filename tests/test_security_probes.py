"""Probes of issue 20 (low-medium items): the page's files carry its security headers; altitude inputs of the
wrong type are a 422, never a 500, and store nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from forewarn.http.web import CONTENT_SECURITY_POLICY, STATIC_DIR
from tests.api_support import World, make_world, volume


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path)


@pytest.mark.parametrize("path", ["/", "/static/index.html",
                                  *(f"/static/{p.relative_to(STATIC_DIR).as_posix()}"
                                    for p in sorted(STATIC_DIR.glob("*/*.*"))[:5])])
def test_the_page_and_its_files_carry_the_policy(world: World, path: str) -> None:
    response = world.client.get(path)
    assert response.status_code == 200, path
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize("field", ["lower_ft", "upper_ft", "lower_fl", "upper_fl"])
@pytest.mark.parametrize("bad", [None, [1], {}, True, "12"])
def test_altitudes_of_the_wrong_type_are_refused_cleanly(world: World, field: str, bad: object) -> None:
    vol = volume(38, 35)
    vol.pop(f"{field.split('_')[0]}_m")
    vol[field] = bad
    op = {"id": "probe-op", "activity_class": "transport", "volumes": [vol]}
    response = world.client.post("/v1/operations", headers=world.auth("usa"), json=op)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_input" and field in response.text
    assert world.service.repo.get_operation("probe-op") is None
