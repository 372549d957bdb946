"""Self-contained HTML situation map of a Forewarn GeoJSON FeatureCollection.

:func:`render_situation_html` turns a FeatureCollection (WGS84 longitude/latitude in degrees) into one
HTML document that works with no network at all: inline CSS, inline vanilla JavaScript, and the map drawn
as inline SVG. There is no ``<script src>``, no ``<link href>``, no tile server, no web font and no
external URL; a Content-Security-Policy meta tag forbids the browser from fetching anything.

Units shown on the page: altitudes in metres above the WGS84 ellipsoid with an approximate flight level
(FL = metres / 0.3048 / 100, standard atmosphere, no QNH or geoid correction), distances in metres or
kilometres, areas in square kilometres, times in UTC.

Every property value is untrusted: all text goes through :func:`html.escape`, and the data handed to the
script is JSON inside ``<script type="application/json">`` with ``<``, ``>`` and ``&`` written as
``\\u003c``, ``\\u003e`` and ``\\u0026`` so that no ``</script>`` can break out of it. The script puts
values in the page with ``textContent`` only.

Pure standard library; the projection is an equirectangular one scaled by the cosine of the mean latitude
of the drawn features (good at mid latitudes, does not handle the antimeridian).
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["render_situation_html"]

KM_PER_DEG_LAT = 6371.0088 * math.pi / 180.0
"""Kilometres per degree of latitude on the mean Earth sphere (IUGG mean radius 6371.0088 km)."""

FOOT_M = 0.3048
"""One international foot in metres (exact); same constant as :mod:`forewarn.units`."""

PARTY_PALETTE: tuple[str, ...] = (
    "#1f5fbf",
    "#8e44ad",
    "#00897b",
    "#6d4c41",
    "#c2185b",
    "#689f38",
    "#37474f",
    "#0277bd",
)
"""Fill colours for parties, assigned in order of the sorted party ids (wrapping after eight)."""

SITE_COLOUR = "#2e7d32"
CONFLICT_COLOUR = "#d32f2f"
WARNING_COLOUR = "#ef6c00"

_MAP_WIDTH = 960.0
_MAP_MARGIN = 48.0
_MIN_MAP_HEIGHT = 420.0
_MAX_MAP_HEIGHT = 760.0
_MIN_SPAN_DEG = 0.02
"""Smallest latitude/longitude span drawn (degrees, about 2 km), so one point still gets a map."""

_KIND_LABELS = {
    "volume": "Volume",
    "protected_site": "Protected site",
    "conflict": "Conflict",
    "site_warning": "Site warning",
}

_Row = tuple[str, str]
_LonLat = tuple[float, float]
_Ring = list[_LonLat]
_Polygon = list[_Ring]


# --------------------------------------------------------------------------------------------------------
# Small helpers: escaping, numbers, times, geometry parsing
# --------------------------------------------------------------------------------------------------------


def _esc(value: object) -> str:
    """HTML-escape any value (quotes included, so the result is safe in attributes too)."""
    return html.escape(str(value), quote=True)


def _as_float(value: object) -> float | None:
    """A finite float from an int/float/numeric string, else ``None`` (booleans are not numbers)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _text(value: object) -> str:
    """Display text for a property value: ``None`` and empty strings become an empty string."""
    if value is None:
        return ""
    return str(value)


def _fmt_number(value: object, digits: int = 0) -> str:
    """``1,234.5``-style number, or the raw text if the value is not numeric."""
    number = _as_float(value)
    if number is None:
        return _text(value)
    return f"{number:,.{digits}f}"


def _fmt_altitude(value: object) -> str:
    """Altitude in metres above the WGS84 ellipsoid with its approximate flight level: ``3,048 m (FL100)``."""
    metres = _as_float(value)
    if metres is None:
        return _text(value)
    flight_level = round(metres / FOOT_M / 100.0)
    fl_text = f"FL{flight_level:03d}" if flight_level >= 0 else f"FL-{abs(flight_level):03d}"
    return f"{metres:,.0f} m ({fl_text})"


def _fmt_distance(value: object) -> str:
    """Distance given in metres: ``850 m`` or ``12.4 km (12,400 m)``."""
    metres = _as_float(value)
    if metres is None:
        return _text(value)
    if abs(metres) < 1000.0:
        return f"{metres:,.0f} m"
    return f"{metres / 1000.0:,.1f} km ({metres:,.0f} m)"


def _fmt_duration(value: object) -> str:
    """Duration given in seconds: ``5,400 s (1 h 30 min)``."""
    seconds = _as_float(value)
    if seconds is None:
        return _text(value)
    whole = round(abs(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = []
    if hours:
        parts.append(f"{hours} h")
    if minutes:
        parts.append(f"{minutes} min")
    if secs or not parts:
        parts.append(f"{secs} s")
    return f"{seconds:,.0f} s ({' '.join(parts)})"


def _fmt_utc(value: object) -> str:
    """ISO 8601 instant shown in UTC (``2015-11-17 06:30:00Z``); unparsable or naive values shown as given."""
    if not isinstance(value, str) or not value:
        return _text(value)
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        return value
    if instant.tzinfo is None:
        return value
    return instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _position(value: object) -> _LonLat | None:
    """A GeoJSON position ``[lon, lat, ...]`` in WGS84 degrees, or ``None`` if it is not one."""
    if not isinstance(value, list | tuple) or len(value) < 2:
        return None
    lon = _as_float(value[0])
    lat = _as_float(value[1])
    if lon is None or lat is None or abs(lat) > 90.0 or abs(lon) > 360.0:
        return None
    return (lon, lat)


def _ring(value: object) -> _Ring | None:
    """A linear ring of at least three valid positions, or ``None``."""
    if not isinstance(value, list | tuple):
        return None
    points = [p for p in (_position(item) for item in value) if p is not None]
    return points if len(points) >= 3 else None


def _polygon(value: object) -> _Polygon | None:
    """A polygon (exterior ring then holes) from GeoJSON Polygon coordinates, or ``None``."""
    if not isinstance(value, list | tuple) or not value:
        return None
    exterior = _ring(value[0])
    if exterior is None:
        return None
    holes = [r for r in (_ring(item) for item in value[1:]) if r is not None]
    return [exterior, *holes]


def _polygons(geometry: object) -> list[_Polygon]:
    """The polygons of a Polygon or MultiPolygon geometry (empty for anything else or bad input)."""
    if not isinstance(geometry, dict):
        return []
    kind = geometry.get("type")
    coordinates = geometry.get("coordinates")
    if kind == "Polygon":
        single = _polygon(coordinates)
        return [single] if single is not None else []
    if kind == "MultiPolygon" and isinstance(coordinates, list | tuple):
        return [p for p in (_polygon(item) for item in coordinates) if p is not None]
    return []


def _point(geometry: object) -> _LonLat | None:
    """The position of a Point geometry, or ``None``."""
    if not isinstance(geometry, dict) or geometry.get("type") != "Point":
        return None
    return _position(geometry.get("coordinates"))


def _jsonable(value: object) -> Any:
    """A copy of ``value`` that :func:`json.dumps` can write as strict JSON (non-finite numbers -> null)."""
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return str(value)


def _script_json(payload: object) -> str:
    """JSON safe to put inside ``<script type="application/json">``: ``<``, ``>``, ``&`` are escaped."""
    text = json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _nice_step(span: float, target_count: float) -> float:
    """A 1-2-5 step that divides ``span`` into roughly ``target_count`` intervals."""
    raw = max(span / target_count, 1e-9)
    exponent = math.floor(math.log10(raw))
    base = 10.0**exponent
    for multiple in (1.0, 2.0, 5.0, 10.0):
        if raw <= multiple * base:
            return multiple * base
    return 10.0 * base


def _nice_floor(value: float) -> float:
    """The largest 1-2-5 number (times a power of ten) not above ``value`` (which must be positive)."""
    exponent = math.floor(math.log10(max(value, 1e-9)))
    base = 10.0**exponent
    for multiple in (5.0, 2.0, 1.0):
        if multiple * base <= value * (1 + 1e-9):
            return multiple * base
    return base


def _fmt_degree(value: float, step: float, positive: str, negative: str) -> str:
    """Graticule label such as ``38.5°E`` with as many decimals as the step needs."""
    decimals = max(0, math.ceil(-math.log10(step) - 1e-9))
    rounded = round(value, decimals)
    hemisphere = "" if rounded == 0 else (positive if rounded > 0 else negative)
    return f"{abs(rounded):.{decimals}f}°{hemisphere}"


# --------------------------------------------------------------------------------------------------------
# Projection
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Projection:
    """Equirectangular projection of WGS84 degrees to SVG pixels, x scaled by cos(mean latitude).

    ``lon0``/``lat0`` are the degrees at the top-left corner, ``scale`` is pixels per degree of latitude.
    """

    lon0: float
    lat0: float
    kx: float
    scale: float
    width: float
    height: float

    @classmethod
    def fit(cls, lon_min: float, lat_min: float, lon_max: float, lat_max: float) -> _Projection:
        """Projection that fits the bounds (degrees) in the map with a margin on every side."""
        lon_mid = (lon_min + lon_max) / 2.0
        lat_mid = (lat_min + lat_max) / 2.0
        lon_span = max(lon_max - lon_min, _MIN_SPAN_DEG)
        lat_span = max(lat_max - lat_min, _MIN_SPAN_DEG)
        kx = max(math.cos(math.radians(lat_mid)), 0.05)
        inner_w = _MAP_WIDTH - 2.0 * _MAP_MARGIN
        height = min(
            max(inner_w * lat_span / (lon_span * kx) + 2.0 * _MAP_MARGIN, _MIN_MAP_HEIGHT), _MAX_MAP_HEIGHT
        )
        inner_h = height - 2.0 * _MAP_MARGIN
        scale = min(inner_w / (lon_span * kx), inner_h / lat_span)
        lon0 = lon_mid - (_MAP_WIDTH / 2.0) / (kx * scale)
        lat0 = lat_mid + (height / 2.0) / scale
        return cls(lon0=lon0, lat0=lat0, kx=kx, scale=scale, width=_MAP_WIDTH, height=round(height))

    def xy(self, lon: float, lat: float) -> tuple[float, float]:
        """SVG pixel coordinates of a WGS84 position (degrees)."""
        return ((lon - self.lon0) * self.kx * self.scale, (self.lat0 - lat) * self.scale)

    @property
    def lon_max(self) -> float:
        """Longitude (degrees) at the right edge of the map."""
        return self.lon0 + self.width / (self.kx * self.scale)

    @property
    def lat_min(self) -> float:
        """Latitude (degrees) at the bottom edge of the map."""
        return self.lat0 - self.height / self.scale

    @property
    def km_per_px(self) -> float:
        """Kilometres per pixel (exact on the mean latitude, approximate elsewhere)."""
        return KM_PER_DEG_LAT / self.scale

    def radii_px(self, lat: float, radius_m: float) -> tuple[float, float]:
        """Pixel radii (x, y) of a circle of ``radius_m`` metres centred at latitude ``lat`` (degrees)."""
        ry_deg = radius_m / 1000.0 / KM_PER_DEG_LAT
        rx_deg = ry_deg / max(math.cos(math.radians(lat)), 0.01)
        return (rx_deg * self.kx * self.scale, ry_deg * self.scale)


def _circle_bounds(lon: float, lat: float, radius_m: float) -> list[_LonLat]:
    """Corner positions (degrees) of the box around a circle of ``radius_m`` metres."""
    dlat = radius_m / 1000.0 / KM_PER_DEG_LAT
    dlon = dlat / max(math.cos(math.radians(lat)), 0.01)
    return [(lon - dlon, lat - dlat), (lon + dlon, lat + dlat)]


# --------------------------------------------------------------------------------------------------------
# Feature model used while rendering
# --------------------------------------------------------------------------------------------------------


@dataclass
class _Item:
    """One drawable feature: its index in the collection, kind, properties and parsed geometry."""

    index: int
    kind: str
    props: dict[str, Any]
    polygons: list[_Polygon] = field(default_factory=list)
    point: _LonLat | None = None

    def get(self, key: str) -> Any:
        """A property value or ``None``."""
        return self.props.get(key)


def _collect(collection: object) -> tuple[list[Any], list[_Item], int]:
    """(raw features, drawable items, number of features skipped) from a FeatureCollection."""
    raw = collection.get("features") if isinstance(collection, dict) else None
    features: list[Any] = list(raw) if isinstance(raw, list | tuple) else []
    items: list[_Item] = []
    skipped = 0
    for index, feature in enumerate(features):
        if not isinstance(feature, dict):
            skipped += 1
            continue
        props_raw = feature.get("properties")
        props: dict[str, Any] = props_raw if isinstance(props_raw, dict) else {}
        kind = props.get("kind")
        geometry = feature.get("geometry")
        item = _Item(index=index, kind=str(kind), props=props)
        if kind == "volume":
            item.polygons = _polygons(geometry)
        elif kind == "protected_site":
            item.point = _point(geometry)
            if item.point is None:
                item.polygons = _polygons(geometry)
        elif kind in ("conflict", "site_warning"):
            item.point = _point(geometry)
        if item.point is None and not item.polygons:
            skipped += 1
            continue
        items.append(item)
    return features, items, skipped


def _party_colours(items: list[_Item]) -> dict[str, tuple[str, str]]:
    """Party id -> (colour, display name), colours by sorted party id from :data:`PARTY_PALETTE`."""
    names: dict[str, str] = {}
    for item in items:
        if item.kind != "volume":
            continue
        party_id = _text(item.get("party_id"))
        name = _text(item.get("party_name"))
        if party_id not in names or (name and not names[party_id]):
            names[party_id] = name
    return {
        party_id: (PARTY_PALETTE[i % len(PARTY_PALETTE)], names[party_id] or party_id or "(unknown party)")
        for i, party_id in enumerate(sorted(names))
    }


def _bounds(items: list[_Item]) -> tuple[float, float, float, float]:
    """(lon_min, lat_min, lon_max, lat_max) in degrees of every drawn shape, site buffers included."""
    points: list[_LonLat] = []
    for item in items:
        for polygon in item.polygons:
            points.extend(polygon[0])
        if item.point is not None:
            points.append(item.point)
            buffer_m = _as_float(item.get("buffer_m")) if item.kind == "protected_site" else None
            if buffer_m is not None and buffer_m > 0:
                points.extend(_circle_bounds(item.point[0], item.point[1], buffer_m))
    lons = [p[0] for p in points]
    lats = [p[1] for p in points]
    return (min(lons), min(lats), max(lons), max(lats))


def _related(items: list[_Item]) -> dict[int, list[int]]:
    """Feature index -> indices of the features it refers to.

    A conflict refers to its two volumes, a site warning to its operation's volumes and its site.
    """
    volumes: dict[tuple[str, str], list[int]] = {}
    by_operation: dict[str, list[int]] = {}
    sites: dict[str, list[int]] = {}
    for item in items:
        if item.kind == "volume":
            operation = _text(item.get("operation_id"))
            volumes.setdefault((operation, _text(item.get("volume_index"))), []).append(item.index)
            by_operation.setdefault(operation, []).append(item.index)
        elif item.kind == "protected_site":
            sites.setdefault(_text(item.get("site_id")), []).append(item.index)
    related: dict[int, list[int]] = {}
    for item in items:
        found: list[int] = []
        if item.kind == "conflict":
            for side in ("a", "b"):
                operation = _text(item.get(f"operation_{side}"))
                volume = item.get(f"volume_{side}")
                if volume is None:
                    found.extend(by_operation.get(operation, []))
                else:
                    found.extend(volumes.get((operation, _text(volume)), []))
        elif item.kind == "site_warning":
            found.extend(by_operation.get(_text(item.get("operation_id")), []))
            found.extend(sites.get(_text(item.get("site_id")), []))
        if found:
            related[item.index] = sorted(set(found))
    return related


# --------------------------------------------------------------------------------------------------------
# Property rows shown in the details panel, the SVG <title> and the tables
# --------------------------------------------------------------------------------------------------------


def _party_label(party_id: object, parties: dict[str, tuple[str, str]]) -> str:
    """``Name (id)`` for a known party id, else the id as given."""
    key = _text(party_id)
    if key in parties and parties[key][1] != key:
        return f"{parties[key][1]} ({key})"
    return key


def _details(item: _Item, parties: dict[str, tuple[str, str]]) -> list[_Row]:
    """(label, value) rows describing one feature, known properties first, then any others as given."""
    get = item.get
    rows: list[_Row] = [("Kind", _KIND_LABELS.get(item.kind, item.kind))]
    used: set[str] = {"kind"}

    def add(label: str, keys: tuple[str, ...], value: str) -> None:
        used.update(keys)
        if any(get(key) is not None and get(key) != "" for key in keys):
            rows.append((label, value))

    if item.kind == "volume":
        add("Operation", ("operation_id",), _text(get("operation_id")))
        add("Version", ("version",), _text(get("version")))
        add("Party", ("party_id", "party_name"), _party_label(get("party_id"), parties))
        add("Activity class", ("activity_class",), _text(get("activity_class")))
        add("State", ("state",), _text(get("state")))
        add("Volume index", ("volume_index",), _text(get("volume_index")))
        add("Footprint", ("footprint_kind",), _text(get("footprint_kind")))
        add("Lower", ("lower_m",), _fmt_altitude(get("lower_m")))
        add("Upper", ("upper_m",), _fmt_altitude(get("upper_m")))
        add("Start (UTC)", ("start",), _fmt_utc(get("start")))
        add("End (UTC)", ("end",), _fmt_utc(get("end")))
        add("Coarsened", ("coarsened",), "yes: footprint, altitudes and times rounded outward by an agreement"
            if get("coarsened") else "no")
    elif item.kind == "protected_site":
        add("Site", ("site_id",), _text(get("site_id")))
        add("Name", ("name",), _text(get("name")))
        add("Category", ("category",), _text(get("category")))
        add("Buffer", ("buffer_m",), _fmt_distance(get("buffer_m")))
        add("Registered by", ("registered_by",), _party_label(get("registered_by"), parties))
    elif item.kind == "conflict":
        add("Conflict", ("conflict_id",), _text(get("conflict_id")))
        for side in ("a", "b"):
            operation = _text(get(f"operation_{side}"))
            volume = get(f"volume_{side}")
            value = operation if volume is None else f"{operation} volume {_text(volume)}"
            add(f"Operation {side.upper()}", (f"operation_{side}", f"volume_{side}"), value)
            add(f"Party {side.upper()}", (f"party_{side}",), _party_label(get(f"party_{side}"), parties))
        add("Overlap area", ("overlap_area_km2",), f"{_fmt_number(get('overlap_area_km2'), 2)} km²")
        add("Altitude overlap", ("altitude_overlap_m",), f"{_fmt_number(get('altitude_overlap_m'))} m")
        add("Time overlap", ("time_overlap_s",), _fmt_duration(get("time_overlap_s")))
        add("Min separation", ("min_separation_m",), _fmt_distance(get("min_separation_m")))
        add("Adjusting operation", ("adjusting_operation",), _text(get("adjusting_operation")))
        used.add("resolution")
        resolution = _text(get("resolution"))
        rows.append(("Resolution", resolution or "none proposed"))
    elif item.kind == "site_warning":
        add("Site", ("site_name", "site_id"), _site_label(get("site_name"), get("site_id")))
        add("Operation", ("operation_id",), _text(get("operation_id")))
        add("Party", ("party_id",), _party_label(get("party_id"), parties))
        add("Distance", ("distance_m",), _fmt_distance(get("distance_m")))
    if item.point is not None:
        lon, lat = item.point
        rows.append(("Position (WGS84)", f"{lat:.5f}°, {lon:.5f}° (lat, lon)"))
    for key, value in item.props.items():
        if key not in used and value is not None:
            shown = value if isinstance(value, str) else json.dumps(_jsonable(value), ensure_ascii=False)
            rows.append((str(key), shown))
    return rows


def _site_label(name: object, site_id: object) -> str:
    """``Name (id)`` or whichever of the two is present."""
    name_text, id_text = _text(name), _text(site_id)
    if name_text and id_text:
        return f"{name_text} ({id_text})"
    return name_text or id_text


def _headline(item: _Item, parties: dict[str, tuple[str, str]]) -> str:
    """One-line description of a feature (used as the SVG ``<title>`` tooltip)."""
    get = item.get
    if item.kind == "volume":
        party = parties.get(_text(get("party_id")), ("", _text(get("party_id"))))[1]
        return (
            f"{_text(get('operation_id'))} ({party}, {_text(get('activity_class'))}) "
            f"{_fmt_altitude(get('lower_m'))} to {_fmt_altitude(get('upper_m'))}, "
            f"{_fmt_utc(get('start'))} to {_fmt_utc(get('end'))}"
        )
    if item.kind == "protected_site":
        return (
            f"Protected site {_site_label(get('name'), get('site_id'))}, {_text(get('category'))}, "
            f"buffer {_fmt_distance(get('buffer_m'))}"
        )
    if item.kind == "conflict":
        return (
            f"Conflict {_text(get('conflict_id'))}: {_text(get('operation_a'))} vs "
            f"{_text(get('operation_b'))}"
        )
    return (
        f"Site warning: {_text(get('operation_id'))} near {_site_label(get('site_name'), get('site_id'))}, "
        f"{_fmt_distance(get('distance_m'))}"
    )


# --------------------------------------------------------------------------------------------------------
# SVG
# --------------------------------------------------------------------------------------------------------


def _path_data(polygons: list[_Polygon], projection: _Projection) -> str:
    """SVG path data for polygons with holes (drawn with ``fill-rule: evenodd``)."""
    parts: list[str] = []
    for polygon in polygons:
        for ring in polygon:
            coords = [projection.xy(lon, lat) for lon, lat in ring]
            parts.append("M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in coords) + " Z")
    return " ".join(parts)


def _shape_attrs(item: _Item, extra_class: str = "") -> str:
    """Common attributes of an interactive shape: class, feature index, keyboard focus."""
    classes = f"fw-shape fw-{item.kind.replace('_', '-')}" + (f" {extra_class}" if extra_class else "")
    return f'class="{classes}" data-fid="{item.index}" tabindex="0"'


def _svg_graticule(projection: _Projection) -> str:
    """Light lon/lat grid lines with degree labels on the left and bottom edges."""
    width, height = projection.width, projection.height
    # One step in degrees for both axes, fine enough for at least about five lines each way.
    step = min(
        _nice_step(projection.lon_max - projection.lon0, 6.0),
        _nice_step(projection.lat0 - projection.lat_min, 5.0),
    )
    lon_step = lat_step = step
    lines: list[str] = []
    labels: list[str] = []
    lon = math.ceil(projection.lon0 / lon_step) * lon_step
    while lon <= projection.lon_max:
        x, _ = projection.xy(lon, projection.lat0)
        lines.append(f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height:.0f}" />')
        label = _fmt_degree(lon, lon_step, "E", "W")
        labels.append(f'<text x="{x + 3:.1f}" y="{height - 6:.0f}">{_esc(label)}</text>')
        lon += lon_step
    lat = math.ceil(projection.lat_min / lat_step) * lat_step
    while lat <= projection.lat0:
        _, y = projection.xy(projection.lon0, lat)
        lines.append(f'<line x1="0" y1="{y:.1f}" x2="{width:.0f}" y2="{y:.1f}" />')
        label = _fmt_degree(lat, lat_step, "N", "S")
        labels.append(f'<text x="4" y="{y - 3:.1f}">{_esc(label)}</text>')
        lat += lat_step
    return (
        '<g id="fw-layer-graticule" class="fw-graticule">'
        + "".join(lines)
        + '<g class="fw-graticule-labels">'
        + "".join(labels)
        + "</g></g>"
    )


def _svg_scale_bar(projection: _Projection) -> str:
    """Scale bar (kilometres, exact at the mean latitude) and a north arrow."""
    km = _nice_floor(projection.km_per_px * projection.width / 4.0)
    length = km / projection.km_per_px
    label = f"{km:g} km" if km >= 1 else f"{km * 1000:g} m"
    half = f"{km / 2:g}" if km >= 1 else f"{km * 500:g}"
    x0, y0 = 16.0, projection.height - 44.0
    x1, xm = x0 + length, x0 + length / 2.0
    return (
        '<g class="fw-scale">'
        f'<rect x="{x0 - 8:.1f}" y="{y0 - 18:.1f}" width="{length + 40:.1f}" height="30" rx="4" />'
        f'<path d="M{x0:.1f},{y0 - 5:.1f} V{y0:.1f} H{x1:.1f} V{y0 - 5:.1f} '
        f'M{xm:.1f},{y0:.1f} V{y0 - 3:.1f}" />'
        f'<text x="{x0:.1f}" y="{y0 - 8:.1f}">0</text>'
        f'<text x="{xm:.1f}" y="{y0 - 8:.1f}" text-anchor="middle">{_esc(half)}</text>'
        f'<text x="{x1:.1f}" y="{y0 - 8:.1f}" text-anchor="middle">{_esc(label)}</text>'
        "</g>"
        f'<g class="fw-north" transform="translate({projection.width - 28:.0f},30)">'
        '<path d="M0,-16 L7,6 L0,1 L-7,6 Z" /><text x="0" y="20" text-anchor="middle">N</text></g>'
    )


def _svg(
    items: list[_Item],
    projection: _Projection,
    parties: dict[str, tuple[str, str]],
    related: dict[int, list[int]],
    headlines: dict[int, str],
) -> str:
    """The whole inline SVG map: graticule, volumes, sites, conflicts, warnings, scale bar."""
    party_index = {party_id: i for i, party_id in enumerate(parties)}
    conflicted = {index for item in items if item.kind == "conflict" for index in related.get(item.index, [])}
    volumes: list[str] = []
    buffers: list[str] = []
    sites: list[str] = []
    conflicts: list[str] = []
    warnings: list[str] = []
    for item in items:
        title = f"<title>{_esc(headlines[item.index])}</title>"
        if item.kind == "volume":
            party_id = _text(item.get("party_id"))
            colour = parties.get(party_id, ("#777777", ""))[0]
            extra = "fw-in-conflict" if item.index in conflicted else ""
            volumes.append(
                f'<path {_shape_attrs(item, extra)} data-party="p{party_index.get(party_id, -1)}" '
                f'd="{_path_data(item.polygons, projection)}" fill="{colour}" stroke="{colour}">'
                f"{title}</path>"
            )
        elif item.kind == "protected_site":
            buffer_m = _as_float(item.get("buffer_m"))
            if item.point is not None:
                x, y = projection.xy(*item.point)
                if buffer_m is not None and buffer_m > 0:
                    rx, ry = projection.radii_px(item.point[1], buffer_m)
                    buffers.append(
                        f'<ellipse {_shape_attrs(item, "fw-buffer")} cx="{x:.1f}" cy="{y:.1f}" '
                        f'rx="{rx:.1f}" ry="{ry:.1f}">{title}</ellipse>'
                    )
                sites.append(
                    f'<circle {_shape_attrs(item, "fw-site-marker")} cx="{x:.1f}" cy="{y:.1f}" r="5.5">'
                    f"{title}</circle>"
                )
            else:
                path = _path_data(item.polygons, projection)
                if buffer_m is not None and buffer_m > 0:
                    # A polygon's buffer is the polygon plus a round-joined stroke of twice the buffer width.
                    rx, ry = projection.radii_px(item.polygons[0][0][0][1], buffer_m)
                    buffers.append(
                        f'<path {_shape_attrs(item, "fw-buffer-band")} d="{path}" '
                        f'stroke-width="{rx + ry:.1f}">{title}</path>'
                    )
                sites.append(f'<path {_shape_attrs(item, "fw-site-area")} d="{path}">{title}</path>')
        elif item.kind == "conflict" and item.point is not None:
            x, y = projection.xy(*item.point)
            conflicts.append(
                f'<g {_shape_attrs(item)} transform="translate({x:.1f},{y:.1f})">{title}'
                '<circle class="fw-ring-outer" r="13" /><circle class="fw-ring" r="9" />'
                '<circle class="fw-dot" r="3.5" /></g>'
            )
        elif item.kind == "site_warning" and item.point is not None:
            x, y = projection.xy(*item.point)
            warnings.append(
                f'<g {_shape_attrs(item)} transform="translate({x:.1f},{y:.1f})">{title}'
                '<path d="M0,-14 L12,7.5 L-12,7.5 Z" /></g>'
            )
    width, height = projection.width, projection.height
    return (
        f'<svg id="fw-map" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        f'aria-label="Situation map" preserveAspectRatio="xMidYMid meet">'
        "<defs>"
        '<pattern id="fw-hatch" patternUnits="userSpaceOnUse" width="7" height="7" '
        'patternTransform="rotate(45)"><rect width="7" height="7" fill="#ffffff" fill-opacity="0.35" />'
        f'<line x1="0" y1="0" x2="0" y2="7" stroke="{SITE_COLOUR}" stroke-width="2" /></pattern>'
        "</defs>"
        f'<rect class="fw-background" x="0" y="0" width="{width:.0f}" height="{height:.0f}" />'
        + _svg_graticule(projection)
        + f'<g id="fw-layer-volumes" class="fw-layer">{"".join(volumes)}</g>'
        + f'<g id="fw-layer-sites" class="fw-layer">{"".join(buffers)}{"".join(sites)}</g>'
        + f'<g id="fw-layer-conflicts" class="fw-layer">{"".join(conflicts)}</g>'
        + f'<g id="fw-layer-warnings" class="fw-layer">{"".join(warnings)}</g>'
        + _svg_scale_bar(projection)
        + "</svg>"
    )


# --------------------------------------------------------------------------------------------------------
# Legend, tables, page
# --------------------------------------------------------------------------------------------------------

_SYMBOLS = {
    "volumes": (
        '<svg class="fw-sym" viewBox="0 0 22 16"><rect x="2" y="2" width="18" height="12" '
        'fill="#888888" fill-opacity="0.3" stroke="#888888" stroke-width="1.5" /></svg>'
    ),
    "sites": (
        '<svg class="fw-sym" viewBox="0 0 22 16"><circle cx="11" cy="8" r="7" fill="none" '
        f'stroke="{SITE_COLOUR}" stroke-dasharray="3 2" /><circle cx="11" cy="8" r="3" fill="{SITE_COLOUR}" '
        'stroke="#ffffff" /></svg>'
    ),
    "site_area": (
        '<svg class="fw-sym" viewBox="0 0 22 16"><rect x="2" y="2" width="18" height="12" '
        f'fill="url(#fw-hatch)" stroke="{SITE_COLOUR}" stroke-width="1.5" /></svg>'
    ),
    "conflicts": (
        '<svg class="fw-sym" viewBox="0 0 22 16"><circle cx="11" cy="8" r="6" fill="none" '
        f'stroke="{CONFLICT_COLOUR}" stroke-width="2.5" /><circle cx="11" cy="8" r="2.5" '
        f'fill="{CONFLICT_COLOUR}" /></svg>'
    ),
    "warnings": (
        '<svg class="fw-sym" viewBox="0 0 22 16"><path d="M11,1.5 L19,14.5 L3,14.5 Z" '
        f'fill="{WARNING_COLOUR}" fill-opacity="0.15" stroke="{WARNING_COLOUR}" stroke-width="2" '
        'stroke-linejoin="round" /></svg>'
    ),
    "graticule": (
        '<svg class="fw-sym" viewBox="0 0 22 16"><path d="M7,1 V15 M15,1 V15 M1,5 H21 M1,11 H21" '
        'stroke="#9aa7b4" stroke-width="1" /></svg>'
    ),
}


def _legend(parties: dict[str, tuple[str, str]], counts: dict[str, int]) -> str:
    """Legend: parties with their colour (each with a toggle) and the layer symbols with toggles."""
    party_rows = "".join(
        f'<li><label><input type="checkbox" checked data-party="p{i}" /> '
        f'<span class="fw-swatch" style="background:{colour}"></span> {_esc(name)}</label></li>'
        for i, (colour, name) in enumerate(parties.values())
    )
    layers = [
        ("volumes", "Operation volumes", counts["volume"]),
        ("sites", "Protected sites (buffer dashed)", counts["protected_site"]),
        ("conflicts", "Conflicts (overlap point)", counts["conflict"]),
        ("warnings", "Site warnings", counts["site_warning"]),
        ("graticule", "Graticule (degrees)", -1),
    ]
    layer_rows = "".join(
        f'<li><label><input type="checkbox" checked data-layer="{key}" /> {_SYMBOLS[key]} {_esc(label)}'
        + (f' <span class="fw-count">{count}</span>' if count >= 0 else "")
        + "</label></li>"
        for key, label, count in layers
    )
    area_row = f'<li class="fw-note">{_SYMBOLS["site_area"]} Protected area (hatched)</li>'
    volume_note = (
        '<li class="fw-note"><span class="fw-swatch fw-swatch-conflict"></span> Volume in a conflict</li>'
    )
    parties_block = (
        f'<h3>Parties</h3><ul class="fw-legend-list">{party_rows}</ul>'
        if parties
        else '<h3>Parties</h3><p class="fw-muted">No volumes.</p>'
    )
    return (
        '<section class="fw-legend" aria-label="Legend">'
        + parties_block
        + f'<h3>Layers</h3><ul class="fw-legend-list">{layer_rows}{area_row}{volume_note}</ul>'
        + "</section>"
    )


def _table(caption: str, headers: list[str], rows: list[tuple[int, list[str]]], empty: str) -> str:
    """An HTML table of escaped cells; each row carries the feature index it describes."""
    head = "".join(f'<th scope="col">{_esc(h)}</th>' for h in headers)
    if rows:
        body = "".join(
            f'<tr data-fid="{fid}" tabindex="0">' + "".join(f"<td>{_esc(c)}</td>" for c in cells) + "</tr>"
            for fid, cells in rows
        )
    else:
        body = f'<tr><td colspan="{len(headers)}" class="fw-muted">{_esc(empty)}</td></tr>'
    return (
        f'<table class="fw-table"><caption>{_esc(caption)}</caption><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def _tables(items: list[_Item], parties: dict[str, tuple[str, str]]) -> str:
    """Summary tables of conflicts and site warnings below the map."""
    conflict_rows: list[tuple[int, list[str]]] = []
    warning_rows: list[tuple[int, list[str]]] = []
    for item in items:
        get = item.get
        if item.kind == "conflict":
            conflict_rows.append(
                (
                    item.index,
                    [
                        _text(get("conflict_id")),
                        f"{_text(get('operation_a'))} / {_party_label(get('party_a'), parties)}",
                        f"{_text(get('operation_b'))} / {_party_label(get('party_b'), parties)}",
                        _fmt_number(get("overlap_area_km2"), 2),
                        _fmt_number(get("altitude_overlap_m")),
                        _fmt_duration(get("time_overlap_s")),
                        _fmt_number(get("min_separation_m")),
                        _text(get("adjusting_operation")),
                        _text(get("resolution")) or "none proposed",
                    ],
                )
            )
        elif item.kind == "site_warning":
            warning_rows.append(
                (
                    item.index,
                    [
                        _site_label(get("site_name"), get("site_id")),
                        _text(get("operation_id")),
                        _party_label(get("party_id"), parties),
                        _fmt_distance(get("distance_m")),
                    ],
                )
            )
    conflicts = _table(
        f"Conflicts ({len(conflict_rows)})",
        [
            "Conflict",
            "Operation A / party",
            "Operation B / party",
            "Overlap area (km²)",
            "Altitude overlap (m)",
            "Time overlap",
            "Min separation (m)",
            "Adjusting",
            "Resolution",
        ],
        conflict_rows,
        "No conflicts.",
    )
    warnings = _table(
        f"Site warnings ({len(warning_rows)})",
        ["Protected site", "Operation", "Party", "Distance"],
        warning_rows,
        "No site warnings.",
    )
    return f'<section class="fw-tables">{conflicts}{warnings}</section>'


_CSS = """
*{box-sizing:border-box}
body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
color:#1d2733;background:#f3f5f8}
header{padding:12px 20px;background:#1d2733;color:#fff}
header h1{margin:0;font-size:20px;font-weight:600}
header p{margin:2px 0 0;color:#c5d0dc;font-size:13px}
main{display:flex;gap:16px;padding:16px 20px;align-items:flex-start;flex-wrap:wrap}
.fw-mapbox{flex:1 1 640px;min-width:320px;background:#fff;border:1px solid #d5dce4;border-radius:6px;
overflow:hidden}
#fw-map{display:block;width:100%;height:auto}
aside{flex:0 0 300px;display:flex;flex-direction:column;gap:12px}
.fw-legend,.fw-details{background:#fff;border:1px solid #d5dce4;border-radius:6px;padding:10px 12px}
h3{margin:4px 0 6px;font-size:13px;text-transform:uppercase;letter-spacing:.04em;color:#52606d}
.fw-legend-list{list-style:none;margin:0 0 6px;padding:0}
.fw-legend-list li{margin:3px 0}
.fw-legend-list label{cursor:pointer;display:flex;align-items:center;gap:6px}
.fw-note{display:flex;align-items:center;gap:6px;padding-left:22px;color:#52606d}
.fw-swatch{display:inline-block;width:18px;height:12px;border-radius:2px;opacity:.75}
.fw-swatch-conflict{background:#fff;border:2px dashed #d32f2f;opacity:1}
.fw-sym{width:22px;height:16px;flex:0 0 22px}
.fw-count{margin-left:auto;color:#52606d;font-variant-numeric:tabular-nums}
.fw-muted{color:#6b7785}
.fw-details table{border-collapse:collapse;width:100%}
.fw-details th{text-align:left;vertical-align:top;padding:2px 8px 2px 0;color:#52606d;font-weight:500;
white-space:nowrap}
.fw-details td{padding:2px 0;word-break:break-word}
.fw-tables{padding:0 20px 24px;display:flex;flex-direction:column;gap:16px}
.fw-table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #d5dce4}
.fw-table caption{text-align:left;font-weight:600;padding:4px 0}
.fw-table th,.fw-table td{border-bottom:1px solid #e3e8ee;padding:5px 8px;text-align:left;
vertical-align:top}
.fw-table th{background:#eef2f6;font-weight:600;font-size:13px}
.fw-table tbody tr[data-fid]{cursor:pointer}
.fw-table tbody tr[data-fid]:hover,.fw-table tbody tr.fw-active{background:#fff4e5}
.fw-empty{padding:60px 20px;text-align:center;color:#52606d;font-size:16px}
.fw-background{fill:#f7f9fb}
.fw-graticule line{stroke:#cfd8e1;stroke-width:.7}
.fw-graticule-labels text{font-size:11px;fill:#6b7785;paint-order:stroke;stroke:#f7f9fb;stroke-width:3px}
.fw-volume{fill-opacity:.28;stroke-width:1.6;stroke-opacity:.9;fill-rule:evenodd}
.fw-volume.fw-in-conflict{stroke:#d32f2f;stroke-width:2.2;stroke-dasharray:7 4;stroke-opacity:1}
.fw-buffer{fill:#2e7d32;fill-opacity:.06;stroke:#2e7d32;stroke-width:1.4;stroke-dasharray:5 4}
.fw-buffer-band{fill:none;stroke:#2e7d32;stroke-opacity:.12;stroke-linejoin:round}
.fw-site-marker{fill:#2e7d32;stroke:#fff;stroke-width:1.6}
.fw-site-area{fill:url(#fw-hatch);stroke:#2e7d32;stroke-width:1.6;fill-rule:evenodd}
.fw-conflict .fw-ring-outer{fill:#d32f2f;fill-opacity:.15;stroke:none}
.fw-conflict .fw-ring{fill:none;stroke:#d32f2f;stroke-width:3}
.fw-conflict .fw-dot{fill:#d32f2f}
.fw-site-warning path{fill:#ef6c00;fill-opacity:.15;stroke:#ef6c00;stroke-width:2.6;stroke-linejoin:round}
.fw-scale rect{fill:#fff;fill-opacity:.85;stroke:#cfd8e1}
.fw-scale path{fill:none;stroke:#1d2733;stroke-width:1.5}
.fw-scale text,.fw-north text{font-size:11px;fill:#1d2733}
.fw-north path{fill:#1d2733}
.fw-shape{cursor:pointer;outline:none}
.fw-shape:hover,.fw-shape:focus,.fw-shape.fw-active{filter:drop-shadow(0 0 3px rgba(0,0,0,.55))}
.fw-volume.fw-active,.fw-volume:hover{fill-opacity:.45}
.fw-related{filter:drop-shadow(0 0 4px #d32f2f)}
.fw-off{display:none}
footer{padding:0 20px 20px;color:#6b7785;font-size:12px}
"""

_JS = """
(function () {
  "use strict";
  var node = document.getElementById("fw-data");
  var data = node ? JSON.parse(node.textContent || "{}") : {};
  var details = data.details || {};
  var related = data.related || {};
  var panel = document.getElementById("fw-details-body");
  var pinned = null;
  var hint = "Hover over or click a shape (or a table row) to see its properties. Click again to unpin.";

  function each(selector, fn) {
    Array.prototype.forEach.call(document.querySelectorAll(selector), fn);
  }
  function mark(fid, on) {
    each("[data-fid]", function (el) {
      if (el.getAttribute("data-fid") === fid) { el.classList.toggle("fw-active", on); }
    });
    (related[fid] || []).forEach(function (other) {
      each("[data-fid]", function (el) {
        if (el.getAttribute("data-fid") === String(other)) { el.classList.toggle("fw-related", on); }
      });
    });
  }
  function render(fid) {
    if (!panel) { return; }
    while (panel.firstChild) { panel.removeChild(panel.firstChild); }
    var rows = fid === null ? null : details[fid];
    if (!rows) {
      var p = document.createElement("p");
      p.className = "fw-muted";
      p.textContent = hint;
      panel.appendChild(p);
      return;
    }
    var table = document.createElement("table");
    rows.forEach(function (row) {
      var tr = document.createElement("tr");
      var th = document.createElement("th");
      var td = document.createElement("td");
      th.textContent = row[0];
      td.textContent = row[1];
      tr.appendChild(th);
      tr.appendChild(td);
      table.appendChild(tr);
    });
    if (pinned === fid) {
      var note = document.createElement("p");
      note.className = "fw-muted";
      note.textContent = "Pinned: click the shape again to unpin.";
      panel.appendChild(note);
    }
    panel.appendChild(table);
  }
  function enter(fid) { if (pinned === null) { mark(fid, true); render(fid); } }
  function leave(fid) { if (pinned === null) { mark(fid, false); render(null); } }
  function click(fid) {
    if (pinned !== null) { mark(pinned, false); }
    pinned = pinned === fid ? null : fid;
    if (pinned !== null) { mark(pinned, true); }
    render(pinned);
  }
  each("[data-fid]", function (el) {
    var fid = el.getAttribute("data-fid");
    el.addEventListener("mouseenter", function () { enter(fid); });
    el.addEventListener("mouseleave", function () { leave(fid); });
    el.addEventListener("focus", function () { enter(fid); });
    el.addEventListener("blur", function () { leave(fid); });
    el.addEventListener("click", function (ev) { ev.stopPropagation(); click(fid); });
    el.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); click(fid); }
    });
  });
  each("input[data-layer]", function (box) {
    box.addEventListener("change", function () {
      var layer = document.getElementById("fw-layer-" + box.getAttribute("data-layer"));
      if (layer) { layer.classList.toggle("fw-off", !box.checked); }
    });
  });
  each("input[data-party]", function (box) {
    box.addEventListener("change", function () {
      var party = box.getAttribute("data-party");
      each(".fw-volume", function (el) {
        if (el.getAttribute("data-party") === party) { el.classList.toggle("fw-off", !box.checked); }
      });
    });
  });
  render(null);
}());
"""


def render_situation_html(collection: dict[str, Any], *, title: str) -> str:
    """Render a GeoJSON FeatureCollection as one self-contained HTML page with an SVG situation map.

    ``collection`` holds features in WGS84 longitude/latitude (degrees); ``properties.kind`` chooses the
    layer: ``volume`` (Polygon/MultiPolygon; ``lower_m``/``upper_m`` in metres above the WGS84 ellipsoid,
    ``start``/``end`` ISO 8601 UTC), ``protected_site`` (Point or Polygon, ``buffer_m`` in metres),
    ``conflict`` (Point of the overlap; ``overlap_area_km2`` in km², ``altitude_overlap_m`` and
    ``min_separation_m`` in metres, ``time_overlap_s`` in seconds) and ``site_warning`` (Point,
    ``distance_m`` in metres). Features of any other kind, or without a usable geometry, are skipped;
    missing properties are simply not shown. ``title`` is untrusted text like every property value.

    The page needs no network: inline CSS, inline JavaScript, inline SVG, no external URL. Party colours
    come from :data:`PARTY_PALETTE` in the order of the sorted party ids. The features are embedded as JSON
    (``<script type="application/json" id="fw-data">``, key ``features``) for the page's script.
    """
    features, items, skipped = _collect(collection)
    parties = _party_colours(items)
    related = _related(items)
    headlines = {item.index: _headline(item, parties) for item in items}
    counts = {kind: sum(1 for item in items if item.kind == kind) for kind in _KIND_LABELS}

    payload = {
        "title": title,
        "features": _jsonable(features),
        "details": {str(item.index): _details(item, parties) for item in items},
        "related": {str(index): others for index, others in related.items()},
    }

    summary_parts = [
        f"{counts['volume']} volume{'s' if counts['volume'] != 1 else ''} of {len(parties)} "
        f"part{'ies' if len(parties) != 1 else 'y'}",
        f"{counts['protected_site']} protected site{'s' if counts['protected_site'] != 1 else ''}",
        f"{counts['conflict']} conflict{'s' if counts['conflict'] != 1 else ''}",
        f"{counts['site_warning']} site warning{'s' if counts['site_warning'] != 1 else ''}",
    ]
    if skipped:
        summary_parts.append(
            f"{skipped} feature{'s' if skipped != 1 else ''} not drawn (unknown kind or geometry)"
        )
    summary = " · ".join(summary_parts)

    if items:
        projection = _Projection.fit(*_bounds(items))
        map_html = _svg(items, projection, parties, related, headlines)
        scale_note = (
            f"Equirectangular projection scaled by cos({(projection.lat0 + projection.lat_min) / 2:.2f}°); "
            f"scale exact at the mean latitude. "
        )
        body = (
            "<main>"
            f'<div class="fw-mapbox">{map_html}</div>'
            "<aside>"
            + _legend(parties, counts)
            + '<section class="fw-details" aria-live="polite"><h3>Details</h3>'
            '<div id="fw-details-body"><p class="fw-muted">Hover over or click a shape to see its '
            "properties.</p></div></section>"
            "</aside></main>" + _tables(items, parties)
        )
    else:
        scale_note = ""
        body = (
            '<main><div class="fw-mapbox fw-empty" id="fw-empty">'
            "<p><strong>Nothing to show.</strong></p>"
            "<p>The collection has no volumes, protected sites, conflicts or site warnings to draw.</p>"
            "</div></main>"
        )

    footer = (
        "<footer>Coordinates WGS84 (degrees). Altitudes in metres above the WGS84 ellipsoid; flight levels "
        "approximate (metres / 0.3048 / 100, standard atmosphere, no QNH or geoid correction). Times UTC. "
        f"{_esc(scale_note)}</footer>"
    )

    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8" />'
        '<meta name="viewport" content="width=device-width, initial-scale=1" />'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\" />"
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{_esc(title)}</h1><p>{_esc(summary)}</p></header>"
        + body
        + footer
        + f'<script type="application/json" id="fw-data">{_script_json(payload)}</script>'
        + f"<script>{_JS}</script>"
        + "</body></html>\n"
    )
