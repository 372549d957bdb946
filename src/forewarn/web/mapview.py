"""The exported, self-contained HTML situation map (``situation.html`` of ``forewarn demo`` / ``forewarn export``).

:func:`render_situation_html` turns a Forewarn GeoJSON FeatureCollection (WGS84 longitude/latitude in degrees)
into one HTML document, rendered from the Jinja2 template ``web/templates/situation.html.j2`` with autoescape:
every property value, and the title, is untrusted text. The map is the operations-centre page's own map module
(``web/static/js/situation-map.js``, on Leaflet), inlined together with Leaflet's JavaScript and CSS and the
Natural Earth basemap, so the file opens with no network at all, with zoom and pan; a Content-Security-Policy
meta tag forbids the browser from fetching anything. The data reaches the script as JSON inside
``<script type="application/json">`` (Jinja2's ``tojson``: ``<``, ``>``, ``&``, ``'`` escaped) and the script puts
values in the page with ``textContent`` only.

Leaflet and the basemap are installed by ``npm ci && npm run assets`` (see ``install.sh``); without them the
export still lists everything in its tables and says what to run.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from forewarn.web import situation_rows as rows
from forewarn.web.situation_values import jsonable

__all__ = ["MapAssets", "load_assets", "render_situation_html"]

WEB_DIR = Path(__file__).resolve().parent
STATIC_DIR = WEB_DIR / "static"

_CLOSING_TAG = re.compile(r"</(script|style)", re.IGNORECASE)
_CSS_URL = re.compile(r"url\((?!data:)[^)]*\)")
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)


@dataclass(frozen=True)
class Leaflet:
    """Leaflet's JavaScript and stylesheet, as vendored by ``npm run assets``."""

    js: str
    css: str


@dataclass(frozen=True)
class MapAssets:
    """What the export inlines: the map module, Leaflet (``None`` if not installed) and the basemap GeoJSON."""

    map_module: str
    leaflet: Leaflet | None
    basemap: dict[str, Any] | None


def _inline(text: str, path: Path) -> str:
    """``text`` if it can sit inside an inline ``<script>``/``<style>`` element, else ``ValueError``."""
    if _CLOSING_TAG.search(text):
        raise ValueError(f"{path} contains a closing script/style tag: it cannot be inlined")
    return text


def _offline_css(css: str) -> str:
    """Leaflet's stylesheet without comments and ``url(...)`` references (icons of controls the map does not use)."""
    return _CSS_URL.sub("none", _CSS_COMMENT.sub("", css))


def load_assets(static_dir: Path = STATIC_DIR) -> MapAssets:
    """Read the assets from ``static_dir`` (the package's static folder by default)."""
    module_path = static_dir / "js" / "situation-map.js"
    leaflet_dir = static_dir / "vendor" / "leaflet"
    basemap_path = static_dir / "basemap" / "countries-50m.geojson"
    leaflet = None
    if (leaflet_dir / "leaflet.js").is_file() and (leaflet_dir / "leaflet.css").is_file():
        css = _offline_css((leaflet_dir / "leaflet.css").read_text(encoding="utf-8"))
        leaflet = Leaflet(js=_inline((leaflet_dir / "leaflet.js").read_text(encoding="utf-8"), leaflet_dir),
                          css=_inline(css, leaflet_dir))
    basemap = json.loads(basemap_path.read_text(encoding="utf-8")) if basemap_path.is_file() else None
    return MapAssets(map_module=_inline(module_path.read_text(encoding="utf-8"), module_path), leaflet=leaflet,
                     basemap=basemap)


@cache
def _package_assets() -> MapAssets:
    return load_assets()


@cache
def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(WEB_DIR / "templates"), autoescape=True, undefined=StrictUndefined,
                       keep_trailing_newline=True)


def render_situation_html(collection: dict[str, Any], *, title: str, assets: MapAssets | None = None) -> str:
    """Render a GeoJSON FeatureCollection as one self-contained HTML page with the situation map.

    ``collection`` holds features in WGS84 longitude/latitude (degrees); ``properties.kind`` chooses the
    layer: ``volume`` (Polygon/MultiPolygon; ``lower_m``/``upper_m`` in metres above the WGS84 ellipsoid,
    ``start``/``end`` ISO 8601 UTC), ``protected_site`` (Point or Polygon, ``buffer_m`` in metres),
    ``conflict`` (Point of the overlap; ``overlap_area_km2`` in km², ``altitude_overlap_m`` and
    ``min_separation_m`` in metres, ``time_overlap_s`` in seconds) and ``site_warning`` (Point,
    ``distance_m`` in metres). Features of any other kind, or without a usable geometry, are skipped;
    missing properties are simply not shown. ``title`` is untrusted text like every property value.

    The features are embedded as JSON (``<script type="application/json" id="fw-data">``, key ``features``,
    non-finite numbers as ``null``) next to what the map draws (``items``) and the details of each (``details``).
    ``assets`` defaults to the package's own (see :func:`load_assets`).
    """
    assets = assets if assets is not None else _package_assets()
    features, items, skipped = rows.collect(collection)
    parties = rows.party_names(items)
    data = {
        "title": title,
        "features": jsonable(features),
        "items": rows.map_items(items),
        "details": {str(item.index): rows.details(item, parties) for item in items},
        "bounds": list(rows.bounds(items)) if items else None,
    }
    return _environment().get_template("situation.html.j2").render(
        title=title,
        summary=rows.summary(items, parties, skipped),
        items=items,
        tables=rows.tables(items, parties),
        data=data,
        leaflet=assets.leaflet,
        basemap=assets.basemap,
        map_module=assets.map_module,
    )
