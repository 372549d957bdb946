"""The rows of the exported situation map: a Forewarn GeoJSON FeatureCollection read defensively and described.

Every property value is untrusted text; nothing here writes HTML (the Jinja2 template of
:mod:`forewarn.web.mapview` escapes it). Geometry is WGS84 longitude/latitude in degrees. Units shown: altitudes
in metres above the WGS84 ellipsoid with an approximate flight level (FL = metres / 0.3048 / 100, standard
atmosphere, no QNH or geoid correction), distances in metres or kilometres, areas in square kilometres, times UTC.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from forewarn.units import FOOT_M

KM_PER_DEG_LAT = 6371.0088 * math.pi / 180.0
"""Kilometres per degree of latitude on the mean Earth sphere (IUGG mean radius 6371.0088 km)."""

KIND_LABELS = {
    "volume": "Volume",
    "protected_site": "Protected site",
    "conflict": "Conflict",
    "site_warning": "Site warning",
}
"""The drawn kinds (``properties.kind``) and how the page names them."""

Row = tuple[str, str]
LonLat = tuple[float, float]
_Ring = list[LonLat]
_Polygon = list[_Ring]


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


def _position(value: object) -> LonLat | None:
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


def _point(geometry: object) -> LonLat | None:
    """The position of a Point geometry, or ``None``."""
    if not isinstance(geometry, dict) or geometry.get("type") != "Point":
        return None
    return _position(geometry.get("coordinates"))


def jsonable(value: object) -> Any:
    """A copy of ``value`` that :func:`json.dumps` can write as strict JSON (non-finite numbers -> null)."""
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return str(value)


def _circle_bounds(lon: float, lat: float, radius_m: float) -> list[LonLat]:
    """Corner positions (degrees) of the box around a circle of ``radius_m`` metres."""
    dlat = radius_m / 1000.0 / KM_PER_DEG_LAT
    dlon = dlat / max(math.cos(math.radians(lat)), 0.01)
    return [(lon - dlon, lat - dlat), (lon + dlon, lat + dlat)]


@dataclass
class Item:
    """One drawable feature: its index in the collection, kind, properties and parsed geometry."""

    index: int
    kind: str
    props: dict[str, Any]
    polygons: list[_Polygon] = field(default_factory=list)
    point: LonLat | None = None

    def get(self, key: str) -> Any:
        """A property value or ``None``."""
        return self.props.get(key)


def collect(collection: object) -> tuple[list[Any], list[Item], int]:
    """(raw features, drawable items, number of features skipped) from a FeatureCollection."""
    raw = collection.get("features") if isinstance(collection, dict) else None
    features: list[Any] = list(raw) if isinstance(raw, list | tuple) else []
    items: list[Item] = []
    skipped = 0
    for index, feature in enumerate(features):
        if not isinstance(feature, dict):
            skipped += 1
            continue
        props_raw = feature.get("properties")
        props: dict[str, Any] = props_raw if isinstance(props_raw, dict) else {}
        kind = props.get("kind")
        geometry = feature.get("geometry")
        item = Item(index=index, kind=str(kind), props=props)
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


def party_names(items: list[Item]) -> dict[str, str]:
    """Party id -> display name (its ``party_name``, else the id) of every party that has a volume."""
    names: dict[str, str] = {}
    for item in items:
        if item.kind != "volume":
            continue
        party_id = _text(item.get("party_id"))
        name = _text(item.get("party_name"))
        if party_id not in names or (name and not names[party_id]):
            names[party_id] = name
    return {party_id: names[party_id] or party_id or "(unknown party)" for party_id in sorted(names)}


def bounds(items: list[Item]) -> tuple[float, float, float, float]:
    """(lon_min, lat_min, lon_max, lat_max) in degrees of every drawn shape, site buffers included."""
    points: list[LonLat] = []
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


def party_label(party_id: object, parties: dict[str, str]) -> str:
    """``Name (id)`` for a known party id, else the id as given."""
    key = _text(party_id)
    if key in parties and parties[key] != key:
        return f"{parties[key]} ({key})"
    return key


def details(item: Item, parties: dict[str, str]) -> list[Row]:
    """(label, value) rows describing one feature, known properties first, then any others as given."""
    get = item.get
    rows: list[Row] = [("Kind", KIND_LABELS.get(item.kind, item.kind))]
    used: set[str] = {"kind"}

    def add(label: str, keys: tuple[str, ...], value: str) -> None:
        used.update(keys)
        if any(get(key) is not None and get(key) != "" for key in keys):
            rows.append((label, value))

    if item.kind == "volume":
        add("Operation", ("operation_id",), _text(get("operation_id")))
        add("Version", ("version",), _text(get("version")))
        add("Party", ("party_id", "party_name"), party_label(get("party_id"), parties))
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
        add("Registered by", ("registered_by",), party_label(get("registered_by"), parties))
    elif item.kind == "conflict":
        add("Conflict", ("conflict_id",), _text(get("conflict_id")))
        for side in ("a", "b"):
            operation = _text(get(f"operation_{side}"))
            volume = get(f"volume_{side}")
            value = operation if volume is None else f"{operation} volume {_text(volume)}"
            add(f"Operation {side.upper()}", (f"operation_{side}", f"volume_{side}"), value)
            add(f"Party {side.upper()}", (f"party_{side}",), party_label(get(f"party_{side}"), parties))
        add("Overlap area", ("overlap_area_km2",), f"{_fmt_number(get('overlap_area_km2'), 2)} km²")
        add("Altitude overlap", ("altitude_overlap_m",), f"{_fmt_number(get('altitude_overlap_m'))} m")
        add("Time overlap", ("time_overlap_s",), _fmt_duration(get("time_overlap_s")))
        add("Min separation", ("min_separation_m",), _fmt_distance(get("min_separation_m")))
        add("Adjusting operation", ("adjusting_operation",), _text(get("adjusting_operation")))
        used.add("resolution")
        resolution = _text(get("resolution"))
        rows.append(("Resolution", resolution or "none proposed"))
    elif item.kind == "site_warning":
        add("Site", ("site_name", "site_id"), site_label(get("site_name"), get("site_id")))
        add("Operation", ("operation_id",), _text(get("operation_id")))
        add("Party", ("party_id",), party_label(get("party_id"), parties))
        add("Distance", ("distance_m",), _fmt_distance(get("distance_m")))
    if item.point is not None:
        lon, lat = item.point
        rows.append(("Position (WGS84)", f"{lat:.5f}°, {lon:.5f}° (lat, lon)"))
    for key, value in item.props.items():
        if key not in used and value is not None:
            shown = value if isinstance(value, str) else json.dumps(jsonable(value), ensure_ascii=False)
            rows.append((str(key), shown))
    return rows


def site_label(name: object, site_id: object) -> str:
    """``Name (id)`` or whichever of the two is present."""
    name_text, id_text = _text(name), _text(site_id)
    if name_text and id_text:
        return f"{name_text} ({id_text})"
    return name_text or id_text



@dataclass(frozen=True)
class Table:
    """A table of plain-text cells below the map; each row carries the feature index it describes."""

    caption: str
    headers: list[str]
    rows: list[tuple[int, list[str]]]
    empty: str


def _conflict_cells(item: Item, parties: dict[str, str]) -> list[str]:
    get = item.get
    return [
        _text(get("conflict_id")),
        f"{_text(get('operation_a'))} / {party_label(get('party_a'), parties)}",
        f"{_text(get('operation_b'))} / {party_label(get('party_b'), parties)}",
        _fmt_number(get("overlap_area_km2"), 2),
        _fmt_number(get("altitude_overlap_m")),
        _fmt_duration(get("time_overlap_s")),
        _fmt_number(get("min_separation_m")),
        _text(get("adjusting_operation")),
        _text(get("resolution")) or "none proposed",
    ]


def _warning_cells(item: Item, parties: dict[str, str]) -> list[str]:
    get = item.get
    return [
        site_label(get("site_name"), get("site_id")),
        _text(get("operation_id")),
        party_label(get("party_id"), parties),
        _fmt_distance(get("distance_m")),
    ]


def tables(items: list[Item], parties: dict[str, str]) -> list[Table]:
    """The summary tables of conflicts and site warnings (area km², altitudes and separations in metres)."""
    conflicts = [(item.index, _conflict_cells(item, parties)) for item in items if item.kind == "conflict"]
    warnings = [(item.index, _warning_cells(item, parties)) for item in items if item.kind == "site_warning"]
    conflict_headers = ["Conflict", "Operation A / party", "Operation B / party", "Overlap area (km²)",
                        "Altitude overlap (m)", "Time overlap", "Min separation (m)", "Adjusting", "Resolution"]
    return [
        Table(f"Conflicts ({len(conflicts)})", conflict_headers, conflicts, "No conflicts."),
        Table(f"Site warnings ({len(warnings)})", ["Protected site", "Operation", "Party", "Distance"], warnings,
              "No site warnings."),
    ]


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def summary(items: list[Item], parties: dict[str, str], skipped: int) -> str:
    """One line counting what the map shows (and what it could not draw)."""
    counts = {kind: sum(1 for item in items if item.kind == kind) for kind in KIND_LABELS}
    parts = [
        f"{_plural(counts['volume'], 'volume', 'volumes')} of {_plural(len(parties), 'party', 'parties')}",
        _plural(counts["protected_site"], "protected site", "protected sites"),
        _plural(counts["conflict"], "conflict", "conflicts"),
        _plural(counts["site_warning"], "site warning", "site warnings"),
    ]
    if skipped:
        parts.append(f"{_plural(skipped, 'feature', 'features')} not drawn (unknown kind or geometry)")
    return " · ".join(parts)


def _geometry(item: Item) -> dict[str, Any]:
    """The validated geometry of an item as GeoJSON (WGS84 degrees): Point, Polygon or MultiPolygon."""
    if item.point is not None:
        return {"type": "Point", "coordinates": list(item.point)}
    polygons = [[[list(p) for p in ring] for ring in polygon] for polygon in item.polygons]
    if len(polygons) == 1:
        return {"type": "Polygon", "coordinates": polygons[0]}
    return {"type": "MultiPolygon", "coordinates": polygons}


def map_items(items: list[Item]) -> list[dict[str, Any]]:
    """What the map script draws, validated here: kind, GeoJSON geometry, an anchor [lon, lat] for the label
    and markers, the label text (operation id of a volume's first volume, name of a site), ``buffer_m`` (metres)."""
    out: list[dict[str, Any]] = []
    for item in items:
        anchor = item.point if item.point is not None else item.polygons[0][0][0]
        label = ""
        if item.kind == "volume" and _text(item.get("volume_index")) in ("", "0"):
            label = _text(item.get("operation_id"))
        elif item.kind == "protected_site":
            label = _text(item.get("name")) or _text(item.get("site_id"))
        buffer_m = _as_float(item.get("buffer_m")) if item.kind == "protected_site" else None
        out.append({"index": item.index, "kind": item.kind, "geometry": _geometry(item), "anchor": list(anchor),
                    "label": label, "operation_id": _text(item.get("operation_id")),
                    "buffer_m": buffer_m if buffer_m is not None and buffer_m > 0 else 0.0})
    return out
