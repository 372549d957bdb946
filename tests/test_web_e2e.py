"""End to end: the operations-centre page in Debian's Chromium (Playwright) against a real ``forewarn serve
--scenario raqqa-2015``. Russia files a notice from the page that conflicts with a coalition operation; the
coalition sees the warning, its lead time and the proposed adjustment and acknowledges it (checked in the
ledger through the API); France sees the planning detail released to it; the observer (no agreement) sees
nothing of it. Every request the page makes stays on 127.0.0.1. Screenshots go to ``test-artifacts/web/``.

Times are UTC; the server runs on the real clock, so the notices are placed a few hours from now.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from forewarn.http import web
from tests.conftest import require_or_skip
from tests.server_support import Server

pytestmark = pytest.mark.slow  # the fast tier: python -m pytest -m "not slow"

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "web"
FOOT_M = 0.3048

COALITION_OP = "co-e2e-isr"
RUSSIAN_OP = "ru-e2e-bombers"
COALITION_PURPOSE = "ISR orbit east of Raqqa (e2e)"
COALITION_UNIT = "E2E reconnaissance squadron"
RUSSIAN_PURPOSE = "never disclosed: russian purpose (e2e)"


class ScenarioServer(Server):
    """``forewarn serve --scenario raqqa-2015`` on an empty database (credentials written next to it)."""

    def __init__(self, db: Path) -> None:
        super().__init__(db, args=("--scenario", "raqqa-2015"), start_timeout_s=60)

    def credentials(self) -> dict[str, dict[str, Any]]:
        doc: dict[str, dict[str, Any]] = json.loads(Path(f"{self.db}.credentials.json").read_text())
        return doc


def _requirements() -> None:
    if not CHROMIUM.is_file():
        require_or_skip("Chromium missing: apt-get install chromium chromium-driver (/usr/bin/chromium)")
    if not web.basemap_installed():
        require_or_skip("basemap not installed: run npm ci && npm run basemap")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        require_or_skip("the playwright python package is not installed")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScenarioServer]:
    _requirements()
    srv = ScenarioServer(tmp_path_factory.mktemp("web") / "forewarn.sqlite")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _requirements()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=15_000)  # a shared CI machine may be slow; nothing here is timed
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


def lead_text(seconds: float) -> str:
    """The page's lead-time format: whole minutes as "H h MM min" (floor)."""
    total = math.floor(abs(seconds) / 60)
    return f"{'−' if seconds < 0 else ''}{total // 60} h {total % 60:02d} min"


def minute(t: datetime) -> str:
    """The page's UTC time input format."""
    return t.strftime("%Y-%m-%d %H:%M")


class Session:
    """One browser context signed in as one party, recording every request the page makes."""

    def __init__(self, browser: Any, server: ScenarioServer, party: str, requests: list[str]) -> None:
        self.party = party
        self.context = browser.new_context(viewport={"width": 1500, "height": 950})
        self.page = self.context.new_page()
        self.page.on("request", lambda r: requests.append(r.url))
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        creds = server.credentials()[party]
        self.page.goto(server.url + "/")
        self.page.fill("#client-id", creds["client_id"])
        self.page.fill("#client-secret", creds["client_secret"])
        self.page.click("#signin-button")
        self.page.wait_for_selector("#app:not([hidden])")
        self.page.wait_for_function("document.body.dataset.basemap === 'loaded'")
        assert self.page.inner_text("#who-party") == party

    def tab(self, name: str) -> None:
        self.page.click(f"#tabs [data-tab={name}]")

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"))

    def click_map(self, lon: float, lat: float) -> None:
        """Click the map at a WGS84 point (the point must be on the map, not under a control)."""
        xy = self.page.evaluate("([lon, lat]) => forewarnMap.screenPoint(lon, lat)", [lon, lat])
        hit = self.page.evaluate("([x, y]) => document.elementFromPoint(x, y).closest('#mapview') !== null",
                                 [xy["x"], xy["y"]])
        assert hit, f"({lon}, {lat}) is not on the map at {xy}"
        self.page.mouse.click(xy["x"], xy["y"])

    def close(self) -> None:
        assert not self.errors, self.errors
        self.context.close()


def api_token(server: ScenarioServer, party: str) -> dict[str, str]:
    return server.token(server.credentials()[party])


def test_page_flow(server: ScenarioServer, browser: Any) -> None:
    from playwright.sync_api import expect

    requests: list[str] = []
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    t_co, t_ru = now + timedelta(hours=2), now + timedelta(hours=3)

    # the coalition's operation, filed through the API (with planning detail released to France)
    coalition = api_token(server, "coalition")
    r = httpx.post(f"{server.url}/v1/operations", headers=coalition, json={
        "id": COALITION_OP, "activity_class": "isr_orbit",
        "volumes": [{"footprint": {"kind": "circle", "center": [39.6, 35.7], "radius_m": 20000},
                     "lower_fl": 180, "upper_fl": 220,
                     "start": t_co.isoformat(), "end": (t_co + timedelta(hours=4)).isoformat()}],
        "detail": {"purpose": COALITION_PURPOSE, "unit": COALITION_UNIT, "call_signs": ["SNOOP99"]},
    })
    assert r.status_code == 201, r.text

    # 1. russia draws a corridor across it, checks, then files
    ru = Session(browser, server, "russia", requests)
    ru.shot("01-russia-signed-in")
    ru.tab("file")
    ru.page.fill("#op-id", RUSSIAN_OP)
    ru.page.fill("#op-class", "bomber_route")
    ru.page.evaluate("forewarnMap.fit([[38.4, 34.9], [40.8, 36.5]])")
    ru.page.click("[data-draw=corridor]")
    ru.page.fill("#halfwidth-km", "10")
    for lon, lat in [(39.2, 35.5), (40.0, 35.9)]:
        ru.click_map(lon, lat)
    ru.page.click("#draw-finish")
    expect(ru.page.locator("#draft-summary")).to_contain_text("corridor of 2 points ±10 km")
    ru.page.select_option("#alt-unit", "ft")
    ru.page.fill("#lower", "19000")
    ru.page.fill("#upper", "23000")
    ru.page.fill("#start", minute(t_ru))
    ru.page.fill("#end", minute(t_ru + timedelta(hours=2)))
    ru.page.fill("#d-purpose", RUSSIAN_PURPOSE)
    ru.page.click("#check-button")
    check = ru.page.locator("#outcome .outcome.check")
    expect(check).to_contain_text("What-if check")
    expect(check.locator(f"li.conflict[data-conflict='{RUSSIAN_OP}|{COALITION_OP}']")).to_have_count(1)
    expect(check.locator(".adjusting")).to_have_text(COALITION_OP)  # bombers hold: the coalition adjusts
    expect(check).to_contain_text("you are not asked to adjust")
    ru.shot("02-russia-what-if")
    ops = httpx.get(f"{server.url}/v1/operations/{RUSSIAN_OP}", headers=api_token(server, "russia"))
    assert ops.status_code == 404, "a what-if check must store nothing"

    ru.page.click("#file-button")
    filed = ru.page.locator("#outcome .outcome.filed")
    expect(filed).to_contain_text(f"{RUSSIAN_OP} v1 is notified")
    expect(filed.locator("li.conflict")).to_have_count(1)
    expect(filed.locator(".impacts")).to_contain_text("coalition")
    stored = httpx.get(f"{server.url}/v1/operations/{RUSSIAN_OP}", headers=api_token(server, "russia")).json()
    vol = stored["volumes"][0]
    assert stored["activity_class"] == "bomber_route" and stored["detail"]["purpose"] == RUSSIAN_PURPOSE
    assert vol["footprint"]["kind"] == "corridor" and vol["footprint"]["half_width_m"] == pytest.approx(10_000)
    for (lon, lat), want in zip(vol["footprint"]["path"], [(39.2, 35.5), (40.0, 35.9)], strict=True):
        assert abs(lon - want[0]) < 0.01 and abs(lat - want[1]) < 0.01  # clicked within a pixel or two
    assert vol["lower_m"] == pytest.approx(19000 * FOOT_M) and vol["upper_m"] == pytest.approx(23000 * FOOT_M)
    assert datetime.fromisoformat(vol["start"]) == t_ru
    expect(ru.page.locator(f"#layer-own [data-op='{RUSSIAN_OP}']")).to_have_count(1)
    ru.shot("03-russia-filed")
    ru.close()

    # 2. the coalition: the warning, its lead time, the proposed adjustment; acknowledge it
    co = Session(browser, server, "coalition", requests)
    expect(co.page.locator("#stream-state")).to_have_text("stream live")
    delivery = _wait_delivery(server, "coalition", RUSSIAN_OP)
    card = co.page.locator(f"article.delivery[data-delivery-id='{delivery['id']}']")
    expect(card).to_contain_text(f"lead time {lead_text(delivery['lead_time_s'])}")
    expect(card).to_contain_text(f"agreed minimum {lead_text(delivery['min_notice_s'])}")
    expect(card.locator(f"li.conflict[data-conflict='{RUSSIAN_OP}|{COALITION_OP}']")).to_have_count(1)
    expect(card.locator(".adjusting")).to_have_text(COALITION_OP)
    for option in delivery["payload"]["resolutions"][0]["options"]:
        expect(card.locator(f"[data-resolutions='{COALITION_OP}']")).to_contain_text(option["description"])
    assert delivery["payload"]["resolutions"][0]["options"], "the coalition is offered an adjustment"
    expect(co.page.locator(f"#layer-conflicts [data-op='{COALITION_OP}']")).to_have_count(1)
    expect(co.page.locator(f"#layer-others [data-op='{RUSSIAN_OP}']")).to_have_count(1)
    expect(co.page.locator("#layer-conflicts .conflict-point")).to_have_count(1)
    assert RUSSIAN_PURPOSE not in co.page.content()
    # late and escalated marks, one per delivery the ledger says is late or escalated (the scenario's 2015
    # notices were never acknowledged: the service escalated them when it started)
    inbox = httpx.get(f"{server.url}/v1/inbox", params={"limit": 1000}, headers=coalition).json()
    escalated = [d for d in inbox if d["escalated_at"]]
    assert escalated, "the scenario's unacknowledged notices are escalated"
    expect(co.page.locator("article.delivery")).to_have_count(len(inbox))
    expect(co.page.locator("article.delivery .tag.escalation", has_text="ESCALATED")).to_have_count(len(escalated))
    expect(co.page.locator("article.delivery.is-escalation")).to_have_count(
        sum(d["payload"]["type"] == "escalation" for d in inbox))
    expect(co.page.locator("article.delivery .tag.late")).to_have_count(sum(d["late"] for d in inbox))
    co.page.evaluate("forewarnMap.fit([[39.0, 35.3], [40.2, 36.1]])")
    co.click_map(39.6, 35.7)  # where both are drawn: both operations' cards open on the map, its own first
    expect(co.page.locator("#map-info .info-op")).to_have_count(2)
    expect(co.page.locator("#map-info .info-op").first).to_contain_text(COALITION_PURPOSE)
    expect(co.page.locator("#map-info .info-op").nth(1)).to_contain_text(RUSSIAN_OP)
    co.shot("04-coalition-warning")
    card.locator("button.ack").click()
    expect(card.locator(".acked")).to_contain_text("acknowledged")
    acked = _delivery(server, "coalition", delivery["id"])
    assert acked["acked_at"] is not None and datetime.fromisoformat(acked["acked_at"]) >= now
    # recorded in the ledger: the coalition's receipt proves the delivery and its acknowledgement
    receipt = httpx.get(f"{server.url}/v1/deliveries/{delivery['id']}/receipt", headers=coalition)
    assert receipt.status_code == 200, receipt.text
    assert "acknowledgement" in {e["kind"] for e in receipt.json()["entries"]}
    # a what-if of the coalition's own, uploaded as GeoJSON: this time the coalition would adjust
    plan = {"type": "FeatureCollection", "operation": {"id": "co-e2e-plan", "activity_class": "isr_orbit"},
            "features": [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [39.6, 35.7]},
                          "properties": {"radius_m": 15000, "lower_fl": 190, "upper_fl": 210}}]}
    co.tab("file")
    co.page.set_input_files("#geojson-file", files=[{"name": "plan.geojson", "mimeType": "application/geo+json",
                                                     "buffer": json.dumps(plan).encode()}])
    expect(co.page.locator("#draft-summary")).to_contain_text("circle r 15 km")
    co.page.fill("#start", minute(t_ru))
    co.page.fill("#end", minute(t_ru + timedelta(hours=1)))
    co.page.click("#check-button")
    what_if = co.page.locator("#outcome .outcome.check")
    expect(what_if.locator("li.conflict[data-conflict='co-e2e-plan|" + RUSSIAN_OP + "']")).to_have_count(1)
    expect(what_if.locator("[data-resolutions='co-e2e-plan'] li.resolution").first).to_be_visible()
    co.shot("05-coalition-what-if-upload")
    assert httpx.get(f"{server.url}/v1/operations/co-e2e-plan", headers=coalition).status_code == 404

    co.tab("timeline")
    expect(co.page.locator("#timeline-list")).to_contain_text(f"acknowledged: {RUSSIAN_OP}")
    co.shot("06-coalition-timeline")
    co.close()

    # 3. France: the coalition's planning detail is released to it; Russia's is not
    fr = Session(browser, server, "france", requests)
    fr.tab("operations")
    item = fr.page.locator(f"[data-op-item='{COALITION_OP}']")
    expect(item).to_contain_text(COALITION_PURPOSE)
    expect(item).to_contain_text(COALITION_UNIT)
    expect(item).to_contain_text("SNOOP99")
    expect(fr.page.locator(f"[data-op-item='{RUSSIAN_OP}']")).to_contain_text("bomber_route")
    assert RUSSIAN_PURPOSE not in fr.page.content()
    view = httpx.get(f"{server.url}/v1/operations/{COALITION_OP}", headers=api_token(server, "france")).json()
    assert view["detail"]["purpose"] == COALITION_PURPOSE
    fr.shot("07-france-planning-detail")

    # the time slider: at a minute of the day only the volumes active then are drawn
    def drawn(op_id: str) -> int:
        count: int = fr.page.locator(f"#mapview [data-op='{op_id}']").count()
        return count

    for at, coalition_on, russia_on in [(t_co - timedelta(minutes=30), False, False),
                                        (t_co + timedelta(minutes=30), True, False),
                                        (t_ru + timedelta(minutes=30), True, True)]:
        fr.page.select_option("#day", at.strftime("%Y-%m-%d"))
        fr.page.uncheck("#whole-day")
        fr.page.locator("#slider").fill(str(at.hour * 60 + at.minute))
        expect(fr.page.locator("#slider-time")).to_have_text(at.strftime("%Y-%m-%d %H:%M UTC"))
        assert (drawn(COALITION_OP), drawn(RUSSIAN_OP)) == (int(coalition_on), int(russia_on)), at
    fr.shot("08-france-slider")

    # a polygon drawn around Raqqa and checked: the protected hospital registered by OCHA is warned about
    fr.page.select_option("#day", "upcoming")
    fr.tab("file")
    fr.page.fill("#op-class", "strike_area")
    fr.page.evaluate("forewarnMap.fit([[38.85, 35.85], [39.15, 36.05]])")
    fr.page.click("[data-draw=polygon]")
    corners = [(38.98, 35.93), (39.03, 35.93), (39.03, 35.97), (38.98, 35.97)]
    for lon, lat in corners:
        fr.click_map(lon, lat)
    fr.page.click("#draw-finish")
    expect(fr.page.locator("#draft-summary")).to_contain_text("polygon of 4 vertices")
    fr.page.fill("#lower", "0")
    fr.page.fill("#upper", "6000")
    fr.page.fill("#start", minute(t_co))
    fr.page.fill("#end", minute(t_co + timedelta(hours=1)))
    with fr.page.expect_request("**/v1/check") as sent:
        fr.page.click("#check-button")
    body = sent.value.post_data_json
    ring = body["volumes"][0]["footprint"]["coordinates"]
    assert body["activity_class"] == "strike_area" and len(ring) == 4
    assert all(abs(x - cx) < 0.005 and abs(y - cy) < 0.005 for (x, y), (cx, cy) in zip(ring, corners, strict=True))
    assert (body["volumes"][0]["lower_m"], body["volumes"][0]["upper_m"]) == (0, 6000)
    warning = fr.page.locator("#outcome .outcome.check .sitewarn")
    expect(warning).to_contain_text("Raqqa National Hospital")
    fr.shot("09-france-polygon-site-warning")
    fr.close()

    # 4. the observer (no agreement) sees nothing of it, nor anything else
    ob = Session(browser, server, "observer", requests)
    expect(ob.page.locator("#inbox-list")).to_contain_text("No deliveries.")
    ob.tab("operations")
    expect(ob.page.locator("#ops-list")).to_contain_text("No operations visible to observer.")
    content = ob.page.content()
    assert RUSSIAN_OP not in content and COALITION_OP not in content
    assert ob.page.locator("[data-op]").count() == 0
    assert httpx.get(f"{server.url}/v1/operations", headers=api_token(server, "observer")).json() == []
    ob.shot("10-observer-nothing")
    ob.close()

    # nothing left 127.0.0.1
    assert requests, "the page made requests"
    outside = [u for u in requests
               if urlsplit(u).scheme not in ("data", "blob") and urlsplit(u).hostname != "127.0.0.1"]
    assert not outside, outside
    assert any(u.endswith(web.BASEMAP_FILE) for u in requests)


def test_missing_basemap_is_explained(server: ScenarioServer, browser: Any) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    page.route("**/basemap/**", lambda route: route.fulfill(status=404, body="not found"))
    page.goto(server.url + "/")
    page.click("#signin summary")  # sign in by pasting a bearer token this time
    page.fill("#token-input", api_token(server, "un-ocha")["Authorization"].removeprefix("Bearer "))
    page.click("#token-button")
    expect(page.locator("#who-party")).to_have_text("un-ocha")
    expect(page.locator("#basemap-status")).to_have_text("basemap not installed: run npm ci && npm run basemap")
    expect(page.locator("#layer-sites .site")).to_have_count(3)  # the scenario's protected sites, still drawn
    page.screenshot(path=str(ARTIFACTS / "11-basemap-missing.png"))
    context.close()


def test_operator_admin_is_told_why_no_operation_is_shown(server: ScenarioServer, browser: Any) -> None:
    """The scenario's ``operator`` admin is bound by no agreement: the page says why the sky is empty (issue 18)."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    page.goto(server.url + "/")
    page.fill("#client-id", server.credentials()["operator"]["client_id"])
    page.fill("#client-secret", server.credentials()["operator"]["client_secret"])
    page.click("#signin-button")
    expect(page.locator("#who-party")).to_have_text("operator")
    expect(page.locator("#view-note")).to_be_visible()
    expect(page.locator("#view-note")).to_contain_text("admin token of a party bound by no agreement")
    context.close()


def test_wrong_secret_is_refused(server: ScenarioServer, browser: Any) -> None:
    from playwright.sync_api import expect

    context = browser.new_context()
    page = context.new_page()
    page.goto(server.url + "/")
    page.fill("#client-id", server.credentials()["russia"]["client_id"])
    page.fill("#client-secret", "wrong")
    page.click("#signin-button")
    expect(page.locator("#signin-error")).to_contain_text("sign-in refused")
    assert page.locator("#app").is_hidden()
    assert page.evaluate("sessionStorage.getItem('forewarn.token')") is None
    # a pasted token the service does not accept (its signature is not the service's) is refused too
    token = api_token(server, "russia")["Authorization"].removeprefix("Bearer ")
    forged = token[: token.rindex(".") + 1] + "A" * (len(token) - token.rindex(".") - 1)
    page.click("#signin summary")
    page.fill("#token-input", forged)
    page.click("#token-button")
    expect(page.locator("#signin-error")).to_contain_text("token refused")
    assert page.locator("#app").is_hidden()
    assert page.evaluate("sessionStorage.getItem('forewarn.token')") is None
    context.close()


def _delivery(server: ScenarioServer, party: str, delivery_id: str) -> dict[str, Any]:
    inbox = httpx.get(f"{server.url}/v1/inbox", params={"limit": 1000}, headers=api_token(server, party)).json()
    found: dict[str, Any] = next(d for d in inbox if d["id"] == delivery_id)
    return found


def _wait_delivery(server: ScenarioServer, party: str, operation_id: str) -> dict[str, Any]:
    """The primary delivery of ``operation_id``'s notice to ``party`` once its send is recorded (lead time fixed)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        inbox = httpx.get(f"{server.url}/v1/inbox", params={"limit": 1000}, headers=api_token(server, party)).json()
        for d in inbox:
            if (d["channel"] == "primary" and d["payload"].get("type") == "notice"
                    and d["payload"]["operation"]["id"] == operation_id and d["delivered_at"]):
                found: dict[str, Any] = d
                return found
        time.sleep(0.2)
    raise AssertionError(f"no recorded delivery of {operation_id} to {party}")


# ---------------------------------------------------------------------------------------------- no browser
def test_web_install_serves_page_without_basemap(tmp_path: Path) -> None:
    """The page is served even when the install step has not built the basemap (the page then says so)."""
    (tmp_path / "index.html").write_text("<!doctype html><title>t</title>", encoding="utf-8")
    app = FastAPI()
    web.install(app, static_dir=tmp_path)
    with TestClient(app) as client:
        r = client.get("/")
        assert r.status_code == 200 and "<title>t</title>" in r.text
        assert "default-src 'self'" in r.headers["content-security-policy"]
        assert "connect-src 'self'" in r.headers["content-security-policy"]
        assert client.get("/static/" + web.BASEMAP_FILE).status_code == 404
        assert client.get("/index.html", follow_redirects=False).headers["location"] == "/"
    assert not web.basemap_installed(tmp_path)


def test_page_files_reference_only_the_origin() -> None:
    """No file of the page names another host: scripts, styles and data come from the service itself."""
    files = [p for p in web.STATIC_DIR.rglob("*") if p.is_file() and p.suffix in (".html", ".js", ".css")]
    ours = [p.read_text(encoding="utf-8") for p in files if "vendor" not in p.parts]
    assert len(ours) >= 5
    for text in ours:
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in text and "//cdn" not in text
    # the vendored Leaflet names a host only in its attribution link (the map turns that prefix off) and comments
    leaflet = web.STATIC_DIR / "vendor" / "leaflet" / "leaflet.js"
    if leaflet.is_file():
        text = leaflet.read_text(encoding="utf-8").replace("http://www.w3.org/2000/svg", "")
        assert set(re.findall(r"https?://[^\s\"'<>)]+", text)) == {"https://leafletjs.com"}


def test_live_tracks_alerts_and_report(server: ScenarioServer, browser: Any) -> None:
    """Real positions fed over the API move on the page (GET /v1/tracks/stream), the intrusion alert they raise
    is drawn where it happened and listed, and the daily report opens from the page."""
    from playwright.sync_api import expect

    now = datetime.now(UTC)
    coalition = api_token(server, "coalition")
    r = httpx.post(f"{server.url}/v1/operations", headers=coalition, json={
        "id": "co-live-orbit", "activity_class": "isr_orbit",
        "volumes": [{"footprint": {"kind": "circle", "center": [39.0, 36.0], "radius_m": 10000},
                     "lower_m": 0, "upper_m": 9000, "start": (now - timedelta(minutes=5)).isoformat(),
                     "end": (now + timedelta(hours=2)).isoformat()}]})
    assert r.status_code == 201, r.text
    requests: list[str] = []
    fr = Session(browser, server, "france", requests)
    fr.page.evaluate("forewarnMap.fit([[38.5, 35.7], [39.5, 36.3]])")
    # France's aircraft flies east into the coalition's orbit area (notified, bound by an agreement): intrusion
    france = api_token(server, "france")
    t0 = time.time()
    for k in range(6):
        lon = 38.80 + 0.03 * k
        r = httpx.post(f"{server.url}/v1/tracks/positions?source=e2e", headers=france, json=[{
            "track_id": "RFR7001", "t_s": t0 + 10 * k, "lat_deg": 36.0, "lon_deg": lon, "alt_m": 6100.0,
            "gs_mps": 250.0, "track_deg": 90.0, "vs_mps": 0.0, "callsign": "RFR7001"}])
        assert r.status_code == 200, r.text
    marker = fr.page.locator("#layer-tracks [data-track='RFR7001']")
    expect(marker).to_have_count(1, timeout=15_000)
    xy = fr.page.evaluate("forewarnMap.screenPoint(38.95, 36.0)")
    expect(fr.page.locator("#layer-alerts .alert-marker").first).to_be_visible(timeout=15_000)
    box = marker.bounding_box()
    assert box is not None
    assert abs(box["x"] + box["width"] / 2 - xy["x"]) < 3 and abs(box["y"] + box["height"] / 2 - xy["y"]) < 3
    fr.tab("timeline")
    expect(fr.page.locator("#timeline-list")).to_contain_text("inside operation co-live-orbit", timeout=15_000)
    fr.shot("12-live-track-and-alert")
    with fr.page.expect_popup() as popup:
        fr.page.click("#report-button")
    report = popup.value
    report.wait_for_load_state()
    expect(report.locator("h1")).to_contain_text("report")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    report.screenshot(path=str(ARTIFACTS / "13-daily-report.png"), full_page=False)
    fr.close()
    assert all(urlsplit(u).hostname in ("127.0.0.1", None) or u.startswith(("blob:", "data:")) for u in requests), \
        requests


def test_opens_on_the_latest_day_with_activity(tmp_path: Path, browser: Any) -> None:
    """Issue 18: with only the past 2015 scenario in the database, the page opens on 17 Nov 2015 (not on "now
    and upcoming", which would hide everything) and draws that day's notices; the legend names things by what
    they are (own notices, notices of other parties), never by party."""
    from playwright.sync_api import expect

    _requirements()
    srv = ScenarioServer(tmp_path / "forewarn.sqlite")
    srv.start()
    try:
        ru = Session(browser, srv, "russia", [])
        expect(ru.page.locator("#day")).to_have_value("2015-11-17")
        expect(ru.page.locator("#layer-own [data-op]").first).to_be_attached()
        assert ru.page.locator("#layer-others [data-op]").count() >= 1  # the coalition's envelopes shared with it
        legend = ru.page.locator("#map-legend").inner_text()
        assert "own notices" in legend and "notices of other parties" in legend and "draft notice" in legend
        ru.shot("12-opens-on-2015")
        ru.close()
    finally:
        srv.stop()
