"""Tests of the exported, self-contained HTML situation map (real rendering from the Jinja2 template with the
package's real assets, parsed with the stdlib HTML parser). The browser tests of the same file (offline, in
Chromium) are in tests/test_mapview_browser.py."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any

import pytest

from forewarn.web.mapview import MapAssets, load_assets, render_situation_html
from tests.conftest import require_or_skip

HOSTILE = "<script>alert(1)</script>"
VOID_ELEMENTS = {"meta", "link", "br", "hr", "img", "input", "col", "area", "base", "embed", "source", "wbr"}


def _square(lon: float, lat: float, size: float) -> list[list[list[float]]]:
    """A closed square ring (WGS84 degrees) with its south-west corner at (lon, lat)."""
    return [[[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]]


def _volume(
    operation: str, party_id: str, party_name: str, lon: float, *, multi: bool = False
) -> dict[str, Any]:
    polygon = _square(lon, 35.9, 0.2)
    geometry: dict[str, Any] = (
        {"type": "MultiPolygon", "coordinates": [polygon, _square(lon + 0.3, 36.2, 0.1)]}
        if multi
        else {"type": "Polygon", "coordinates": polygon}
    )
    return {
        "type": "Feature",
        "geometry": geometry,
        "properties": {
            "kind": "volume",
            "operation_id": operation,
            "version": 1,
            "party_id": party_id,
            "party_name": party_name,
            "activity_class": "strike_area",
            "state": "notified",
            "volume_index": 0,
            "footprint_kind": "polygon",
            "lower_m": 3000.0,
            "upper_m": 9000.0,
            "start": "2015-11-17T06:00:00Z",
            "end": "2015-11-17T08:00:00+00:00",
        },
    }


@pytest.fixture
def collection() -> dict[str, Any]:
    """Two parties' volumes (one a MultiPolygon), a protected site, a conflict and a site warning."""
    return {
        "type": "FeatureCollection",
        "features": [
            _volume("ru-op-1", "ru-vks", "Russian Aerospace Forces", 38.9),
            _volume("fr-op-7", "fr-forces", "French forces", 39.0, multi=True),
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [39.01, 35.95]},
                "properties": {
                    "kind": "protected_site",
                    "site_id": "site-1",
                    "name": HOSTILE,
                    "category": "hospital",
                    "buffer_m": 1500.0,
                    "registered_by": "un-ocha",
                },
            },
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [39.05, 36.0]},
                "properties": {
                    "kind": "conflict",
                    "conflict_id": "c-1",
                    "operation_a": "ru-op-1",
                    "operation_b": "fr-op-7",
                    "party_a": "ru-vks",
                    "party_b": "fr-forces",
                    "volume_a": 0,
                    "volume_b": 0,
                    "overlap_area_km2": 113.4,
                    "altitude_overlap_m": 6000.0,
                    "time_overlap_s": 7200.0,
                    "min_separation_m": 0.0,
                    "adjusting_operation": "fr-op-7",
                    "resolution": "shift fr-op-7 by +2 h 10 min</script><b>",
                },
            },
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [39.01, 35.95]},
                "properties": {
                    "kind": "site_warning",
                    "site_id": "site-1",
                    "site_name": HOSTILE,
                    "operation_id": "ru-op-1",
                    "party_id": "ru-vks",
                    "distance_m": 0.0,
                },
            },
        ],
    }


class _Walker(HTMLParser):
    """Collects every element with its attributes, checks nesting, and keeps script bodies."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.text: list[str] = []
        self._script_attrs: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        if tag == "script":
            self._script_attrs = dict(attrs)
        if tag not in VOID_ELEMENTS:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self._script_attrs is not None and self.stack and self.stack[-1] == "script":
            self.scripts.append((self._script_attrs, data))
            self._script_attrs = None
        else:
            self.text.append(data)


@pytest.fixture(scope="module")
def assets() -> MapAssets:
    """The package's assets; Leaflet and the basemap come from ``npm ci && npm run assets``."""
    found = load_assets()
    if found.leaflet is None or found.basemap is None:
        require_or_skip("map assets missing: npm ci && npm run assets")
    return found


def _walk(page: str) -> _Walker:
    walker = _Walker()
    walker.feed(page)
    walker.close()
    assert walker.errors == []
    assert walker.stack == [], f"unclosed elements: {walker.stack}"
    return walker


def _classes(attrs: dict[str, str | None]) -> set[str]:
    return set((attrs.get("class") or "").split())


def _embedded(walker: _Walker) -> dict[str, Any]:
    blocks = [body for attrs, body in walker.scripts
              if attrs.get("type") == "application/json" and attrs.get("id") == "fw-data"]
    assert len(blocks) == 1
    assert "</" not in blocks[0]
    assert "<" not in blocks[0]
    data = json.loads(blocks[0])
    assert isinstance(data, dict)
    return data


def _outside_scripts(page: str) -> str:
    """The page without the bodies of its inline scripts (Leaflet's code names its home page in a string)."""
    return re.sub(r"(<script[^>]*>).*?(</script>)", r"\1\2", page, flags=re.S)


def test_page_parses_and_is_self_contained(collection: dict[str, Any], assets: MapAssets) -> None:
    page = render_situation_html(collection, title="Raqqa, 17 Nov 2015", assets=assets)
    walker = _walk(page)
    tags = [tag for tag, _ in walker.elements]
    assert tags[0] == "html"
    assert "link" not in tags
    assert all("src" not in attrs for tag, attrs in walker.elements if tag == "script")
    markup = _outside_scripts(page)
    references = re.findall(r"""(?:\b(?:src|href)\s*=\s*["']?|url\(\s*["']?)([^"')\s>]*)""", markup, re.I)
    assert references == [], references
    assert "http://" not in markup and "https://" not in markup and "@import" not in markup
    csp = next(attrs["content"] for _, attrs in walker.elements
               if attrs.get("http-equiv") == "Content-Security-Policy")
    assert csp is not None and csp.startswith("default-src 'none'")
    # the map is the page's own module, inlined, then started
    modules = [body for attrs, body in walker.scripts if attrs.get("type") == "module"]
    assert len(modules) == 1 and assets.map_module in modules[0] and "exportPage();" in modules[0]
    assert sum(1 for attrs, body in walker.scripts if assets.leaflet is not None and body == assets.leaflet.js) == 1
    basemap = [body for attrs, body in walker.scripts if attrs.get("id") == "fw-basemap"]
    assert json.loads(basemap[0]) == assets.basemap


def test_map_items_one_per_drawn_feature(collection: dict[str, Any], assets: MapAssets) -> None:
    data = _embedded(_walk(render_situation_html(collection, title="t", assets=assets)))
    items = data["items"]
    assert [(i["index"], i["kind"]) for i in items] == [
        (0, "volume"), (1, "volume"), (2, "protected_site"), (3, "conflict"), (4, "site_warning")]
    assert items[1]["geometry"]["type"] == "MultiPolygon" and len(items[1]["geometry"]["coordinates"]) == 2
    assert items[0]["label"] == "ru-op-1" and items[0]["anchor"] == [38.9, 35.9]
    assert items[2]["buffer_m"] == 1500.0 and items[2]["label"] == HOSTILE
    west, south, _east, north = data["bounds"]
    assert west == pytest.approx(38.9) and north == pytest.approx(36.3)
    assert south < 35.95 - 1.3 / 111.2  # the 1.5 km buffer of the site is inside the bounds


def test_one_palette_one_legend(assets: MapAssets) -> None:
    """Colours say what a thing is: one entry per kind, parties are not told apart by colour (issue 18)."""
    module = assets.map_module
    legend = re.search(r"export const LEGEND = \[(.*?)\];", module, re.S)
    assert legend is not None
    labels = re.findall(r'label: "([^"]+)"', legend.group(1))
    assert labels[:2] == ["own notices", "notices of other parties"]
    assert "draft notice (not filed)" in labels
    palette = dict(re.findall(r'^  (\w+): "(#[0-9a-f]{6})"', module, re.M))
    kinds = ["own", "others", "conflict", "site", "warning", "track", "draft"]
    assert len({palette[k] for k in kinds}) == len(kinds)  # seven things, seven colours
    assert "PARTY_COLOURS" not in module


def test_untrusted_values_are_escaped(collection: dict[str, Any], assets: MapAssets) -> None:
    title = 'Ops "picture" <img src=x onerror=alert(2)>'
    page = render_situation_html(collection, title=title, assets=assets)
    assert HOSTILE not in page
    assert "</script><b>" not in page
    assert "<img" not in page
    walker = _walk(page)
    # Only the scripts the page itself ships are there (data, basemap, Leaflet, the map); the hostile ones stayed text.
    assert [tag for tag, _ in walker.elements].count("script") == 4
    assert HOSTILE in " ".join(walker.text)  # shown to the reader, as text
    data = _embedded(walker)
    assert data["title"] == title
    assert data["features"][2]["properties"]["name"] == HOSTILE


def test_embedded_json_round_trips(collection: dict[str, Any]) -> None:
    walker = _walk(render_situation_html(collection, title="t"))
    data = _embedded(walker)
    assert len(data["features"]) == len(collection["features"])
    assert data["features"] == collection["features"]
    conflict_rows = dict(data["details"]["3"])
    assert conflict_rows["Overlap area"] == "113.40 km²"
    assert conflict_rows["Time overlap"] == "7,200 s (2 h)"
    assert conflict_rows["Resolution"].startswith("shift fr-op-7")
    volume_rows = dict(data["details"]["0"])
    assert volume_rows["Lower"] == "3,000 m (FL098)"
    assert volume_rows["Upper"] == "9,000 m (FL295)"
    assert volume_rows["End (UTC)"] == "2015-11-17 08:00:00Z"
    assert volume_rows["Party"] == "Russian Aerospace Forces (ru-vks)"


def test_summary_tables_list_conflicts_and_warnings(collection: dict[str, Any]) -> None:
    walker = _walk(render_situation_html(collection, title="t"))
    rows = [attrs["data-fid"] for tag, attrs in walker.elements if tag == "tr" and "data-fid" in attrs]
    assert rows == ["3", "4"]
    text = " ".join(walker.text)
    assert "Conflicts (1)" in text
    assert "Site warnings (1)" in text


@pytest.mark.parametrize(
    "empty",
    [{"type": "FeatureCollection", "features": []}, {"type": "FeatureCollection"}, {}],
)
def test_empty_collection_renders(empty: dict[str, Any]) -> None:
    page = render_situation_html(empty, title="Nothing yet")
    walker = _walk(page)
    assert "Nothing to show" in " ".join(walker.text)
    assert not any(attrs.get("id") == "fw-map" for tag, attrs in walker.elements)
    assert not any(attrs.get("type") == "module" for attrs, _ in walker.scripts)
    assert _embedded(walker)["features"] == []


def test_unknown_kinds_and_missing_properties_do_not_crash() -> None:
    collection: dict[str, Any] = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [1, 2]},
                "properties": {"kind": "x"},
            },
            {"type": "Feature", "geometry": None, "properties": {"kind": "volume"}},
            {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1]]]}},
            "not a feature",
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": _square(10.0, 50.0, 0.5)},
                "properties": {"kind": "volume", "lower_m": float("nan"), "extra": {"a": 1}},
            },
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": _square(10.1, 50.1, 0.1)},
                "properties": {"kind": "protected_site", "buffer_m": 200},
            },
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [10.2, 50.2]},
                "properties": {"kind": "conflict"},
            },
        ],
    }
    walker = _walk(render_situation_html(collection, title="partial"))
    data = _embedded(walker)
    assert len(data["features"]) == 7
    assert data["features"][4]["properties"]["lower_m"] is None  # NaN is not JSON
    assert sorted(data["details"]) == ["4", "5", "6"]
    assert "4 features not drawn" in " ".join(walker.text)
    assert ["Resolution", "none proposed"] in data["details"]["6"]
    assert [item["geometry"]["type"] for item in data["items"]] == ["Polygon", "Polygon", "Point"]


def test_only_skipped_features_render_as_empty() -> None:
    collection = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "geometry": None, "properties": {"kind": "mystery"}}],
    }
    walker = _walk(render_situation_html(collection, title="t"))
    assert "Nothing to show" in " ".join(walker.text)
    assert len(_embedded(walker)["features"]) == 1


def test_without_leaflet_the_tables_remain_and_say_what_to_run(collection: dict[str, Any]) -> None:
    bare = MapAssets(map_module=load_assets().map_module, leaflet=None, basemap=None)
    walker = _walk(render_situation_html(collection, title="t", assets=bare))
    text = " ".join(walker.text)
    assert "Map library not installed" in text and "npm run assets" in text
    assert "Conflicts (1)" in text
    assert not any(attrs.get("type") == "module" for attrs, _ in walker.scripts)


# ---------------------------------------------------------------------------------------------- in a browser
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def chromium() -> Any:
    sync_api = pytest.importorskip("playwright.sync_api")
    from pathlib import Path

    if not Path(CHROMIUM).exists():
        require_or_skip("Chromium missing: apt-get install chromium (/usr/bin/chromium)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


def _expect_zoomend(page: Any) -> None:
    """Arm a flag, `window.fwZoomEnded`, set at the map's next 'zoomend' (call before the gesture)."""
    page.evaluate(
        "() => { window.fwZoomEnded = false; forewarnMap.map.once('zoomend', () => { window.fwZoomEnded = true; }); }"
    )


def _await_zoomend(page: Any) -> None:
    """Wait until the zoom armed by `_expect_zoomend` has ended (its animation included)."""
    page.wait_for_function("() => window.fwZoomEnded === true")


@pytest.mark.slow
def test_export_renders_offline_with_zoom_and_escaped_text(
    collection: dict[str, Any], assets: MapAssets, chromium: Any, tmp_path: Any
) -> None:
    """The exported file in Chromium with the network off: Leaflet runs, the basemap countries and every feature
    are drawn, zoom works, and hostile names are text (no script of theirs runs)."""
    collection["features"][0]["properties"]["party_name"] = HOSTILE
    page_file = tmp_path / "situation.html"
    page_file.write_text(render_situation_html(collection, title=HOSTILE, assets=assets), encoding="utf-8")
    context = chromium.new_context(offline=True, viewport={"width": 1300, "height": 900})
    page = context.new_page()
    requests: list[str] = []
    problems: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("dialog", lambda d: problems.append(f"dialog {d.message}"))
    page.goto(page_file.as_uri())
    page.wait_for_function("document.body.dataset.map === 'ready'", timeout=15_000)
    assert page.evaluate("typeof L === 'object' && L.version") == "1.9.4"
    assert page.locator("#layer-basemap path.land").count() == 1
    assert page.locator("#layer-basemap path.border").count() == 1
    assert page.locator("#layer-others [data-op]").count() == 2  # one path per volume, the MultiPolygon included
    assert page.locator("#layer-conflicts .conflict-point").count() == 1
    assert page.locator("#layer-alerts .site-warning").count() == 1
    assert page.locator("#layer-sites .site").count() == 1
    assert page.locator("#fw-legend input[data-layer]").count() == 7
    assert page.locator(".fw-label", has_text=HOSTILE).count() == 1  # the site's name, shown as text
    assert page.locator("h1").inner_text() == HOSTILE
    # zoom: Leaflet's + button, then the wheel. Leaflet sets the new zoom when its 250 ms zoom animation starts and
    # drops any zoom asked for while one runs, so each step waits for its animation's end ('zoomend').
    zoom = page.evaluate("forewarnMap.map.getZoom()")
    _expect_zoomend(page)
    page.click(".leaflet-control-zoom-in")
    _await_zoomend(page)
    assert page.evaluate("forewarnMap.map.getZoom()") > zoom + 0.25
    box = page.locator("#fw-map").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    zoomed = page.evaluate("forewarnMap.map.getZoom()")
    _expect_zoomend(page)
    page.mouse.wheel(0, 400)
    _await_zoomend(page)
    assert page.evaluate("forewarnMap.map.getZoom()") < zoomed
    # a click on a volume shows its properties, the hostile party name as text
    page.evaluate("forewarnMap.fit([[38.9, 35.9], [39.1, 36.1]])")
    xy = page.evaluate("forewarnMap.screenPoint(38.95, 35.95)")
    page.mouse.click(xy["x"], xy["y"])
    assert HOSTILE in page.locator("#fw-details-body").inner_text()
    assert page.evaluate("document.querySelectorAll('script').length") == 4
    assert requests == [page_file.as_uri()]
    assert problems == []
    context.close()
