"""Tests of the self-contained HTML situation map (real rendering, parsed with the stdlib HTML parser)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any

import pytest

from forewarn.web.mapview import PARTY_PALETTE, render_situation_html

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
    blocks = [body for attrs, body in walker.scripts if attrs.get("type") == "application/json"]
    assert len(blocks) == 1
    assert "</" not in blocks[0]
    assert "<" not in blocks[0]
    data = json.loads(blocks[0])
    assert isinstance(data, dict)
    return data


def test_page_parses_and_is_self_contained(collection: dict[str, Any]) -> None:
    page = render_situation_html(collection, title="Raqqa, 17 Nov 2015")
    walker = _walk(page)
    tags = [tag for tag, _ in walker.elements]
    assert tags[0] == "html"
    assert "link" not in tags
    assert all("src" not in attrs for tag, attrs in walker.elements if tag == "script")
    references = re.findall(r"""(?:\b(?:src|href)\s*=\s*["']?|url\(\s*["']?)([^"')\s>]*)""", page, re.I)
    assert all(not ref.startswith(("http:", "https:", "//")) for ref in references), references
    assert all(ref.startswith("#") for ref in references), references
    assert "http://" not in page
    assert "https://" not in page
    assert "@import" not in page


def test_svg_has_one_shape_per_volume_and_all_layers(collection: dict[str, Any]) -> None:
    walker = _walk(render_situation_html(collection, title="t"))
    tags = [tag for tag, _ in walker.elements]
    assert tags.count("svg") >= 1
    assert any(tag == "svg" and attrs.get("id") == "fw-map" for tag, attrs in walker.elements)
    volume_shapes = [
        attrs
        for tag, attrs in walker.elements
        if tag in ("path", "polygon") and "fw-volume" in _classes(attrs)
    ]
    assert len(volume_shapes) == 2  # one path per volume feature, the MultiPolygon included
    assert {attrs["data-fid"] for attrs in volume_shapes} == {"0", "1"}
    # Both volumes take part in the conflict, so both are outlined as such.
    assert all("fw-in-conflict" in _classes(attrs) for attrs in volume_shapes)
    # Colours come from the fixed palette by sorted party id: fr-forces < ru-vks.
    fills = {attrs["data-fid"]: attrs.get("fill") for attrs in volume_shapes}
    assert fills == {"1": PARTY_PALETTE[0], "0": PARTY_PALETTE[1]}
    by_class = [_classes(attrs) for _, attrs in walker.elements]
    assert sum("fw-site-marker" in c for c in by_class) == 1
    assert sum("fw-buffer" in c for c in by_class) == 1
    assert sum("fw-conflict" in c for c in by_class) == 1
    assert sum("fw-site-warning" in c for c in by_class) == 1
    layer_ids = {attrs.get("id") for _, attrs in walker.elements}
    assert {"fw-layer-volumes", "fw-layer-sites", "fw-layer-conflicts", "fw-layer-warnings"} <= layer_ids
    boxes = {attrs.get("data-layer") for tag, attrs in walker.elements if tag == "input"}
    assert {"volumes", "sites", "conflicts", "warnings", "graticule"} <= boxes


def test_legend_lists_both_parties(collection: dict[str, Any]) -> None:
    walker = _walk(render_situation_html(collection, title="t"))
    text = " ".join(walker.text)
    assert "Russian Aerospace Forces" in text
    assert "French forces" in text
    party_boxes = [attrs for tag, attrs in walker.elements if tag == "input" and "data-party" in attrs]
    assert len(party_boxes) == 2


def test_untrusted_values_are_escaped(collection: dict[str, Any]) -> None:
    title = 'Ops "picture" <img src=x onerror=alert(2)>'
    page = render_situation_html(collection, title=title)
    assert HOSTILE not in page
    assert "</script><b>" not in page
    assert "<img" not in page
    walker = _walk(page)
    # Only the two scripts the page itself ships are there; the hostile ones stayed text.
    assert [tag for tag, _ in walker.elements].count("script") == 2
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
    assert data["related"]["3"] == [0, 1]
    assert data["related"]["4"] == [0, 2]


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
    assert not any(tag == "svg" and attrs.get("id") == "fw-map" for tag, attrs in walker.elements)
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
    assert any("fw-site-area" in _classes(attrs) for _, attrs in walker.elements)


def test_only_skipped_features_render_as_empty() -> None:
    collection = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "geometry": None, "properties": {"kind": "mystery"}}],
    }
    walker = _walk(render_situation_html(collection, title="t"))
    assert "Nothing to show" in " ".join(walker.text)
    assert len(_embedded(walker)["features"]) == 1
