"""Every file of the page carries the page's security headers (issue 20: /static/index.html lacked them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from forewarn.http.web import CONTENT_SECURITY_POLICY, STATIC_DIR
from tests.api_support import World, make_world


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
