"""The rows of the exported situation map: a Forewarn GeoJSON FeatureCollection read defensively and described.

Every property value is untrusted text; nothing here writes HTML (the Jinja2 template of
:mod:`forewarn.web.mapview` escapes it). Geometry is WGS84 longitude/latitude in degrees. Units shown: altitudes
in metres above the WGS84 ellipsoid with an approximate flight level (FL = metres / 0.3048 / 100, standard
atmosphere, no QNH or geoid correction), distances in metres or kilometres, areas in square kilometres, times UTC.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from forewarn.web.situation_geometry import LonLat, Polygon, circle_bounds, read_point, read_polygons
from forewarn.web.situation_values import (
    as_float,
    as_text,
    fmt_altitude,
    fmt_distance,
    fmt_duration,
    fmt_number,
    fmt_utc,
    jsonable,
)

KIND_LABELS = {
    "volume": "Volume",
    "protected_site": "Protected site",
    "conflict": "Conflict",
    "site_warning": "Site warning",
}
"""The drawn kinds (``properties.kind``) and how the page names them."""

Row = tuple[str, str]


@dataclass
class Item:
    """One drawable feature: its index in the collection, kind, properties and parsed geometry."""

    index: int
    kind: str
    props: dict[str, Any]
    polygons: list[Polygon] = field(default_factory=list)
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
            item.polygons = read_polygons(geometry)
        elif kind == "protected_site":
            item.point = read_point(geometry)
            if item.point is None:
                item.polygons = read_polygons(geometry)
        elif kind in ("conflict", "site_warning"):
            item.point = read_point(geometry)
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
        party_id = as_text(item.get("party_id"))
        name = as_text(item.get("party_name"))
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
            buffer_m = as_float(item.get("buffer_m")) if item.kind == "protected_site" else None
            if buffer_m is not None and buffer_m > 0:
                points.extend(circle_bounds(item.point[0], item.point[1], buffer_m))
    lons = [p[0] for p in points]
    lats = [p[1] for p in points]
    return (min(lons), min(lats), max(lons), max(lats))


def party_label(party_id: object, parties: dict[str, str]) -> str:
    """``Name (id)`` for a known party id, else the id as given."""
    key = as_text(party_id)
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
        add("Operation", ("operation_id",), as_text(get("operation_id")))
        add("Version", ("version",), as_text(get("version")))
        add("Party", ("party_id", "party_name"), party_label(get("party_id"), parties))
        add("Activity class", ("activity_class",), as_text(get("activity_class")))
        add("State", ("state",), as_text(get("state")))
        add("Volume index", ("volume_index",), as_text(get("volume_index")))
        add("Footprint", ("footprint_kind",), as_text(get("footprint_kind")))
        add("Lower", ("lower_m",), fmt_altitude(get("lower_m")))
        add("Upper", ("upper_m",), fmt_altitude(get("upper_m")))
        add("Start (UTC)", ("start",), fmt_utc(get("start")))
        add("End (UTC)", ("end",), fmt_utc(get("end")))
        add("Coarsened", ("coarsened",), "yes: footprint, altitudes and times rounded outward by an agreement"
            if get("coarsened") else "no")
    elif item.kind == "protected_site":
        add("Site", ("site_id",), as_text(get("site_id")))
        add("Name", ("name",), as_text(get("name")))
        add("Category", ("category",), as_text(get("category")))
        add("Buffer", ("buffer_m",), fmt_distance(get("buffer_m")))
        add("Registered by", ("registered_by",), party_label(get("registered_by"), parties))
    elif item.kind == "conflict":
        add("Conflict", ("conflict_id",), as_text(get("conflict_id")))
        for side in ("a", "b"):
            operation = as_text(get(f"operation_{side}"))
            volume = get(f"volume_{side}")
            value = operation if volume is None else f"{operation} volume {as_text(volume)}"
            add(f"Operation {side.upper()}", (f"operation_{side}", f"volume_{side}"), value)
            add(f"Party {side.upper()}", (f"party_{side}",), party_label(get(f"party_{side}"), parties))
        add("Overlap area", ("overlap_area_km2",), f"{fmt_number(get('overlap_area_km2'), 2)} km²")
        add("Altitude overlap", ("altitude_overlap_m",), f"{fmt_number(get('altitude_overlap_m'))} m")
        add("Time overlap", ("time_overlap_s",), fmt_duration(get("time_overlap_s")))
        add("Min separation", ("min_separation_m",), fmt_distance(get("min_separation_m")))
        add("Adjusting operation", ("adjusting_operation",), as_text(get("adjusting_operation")))
        used.add("resolution")
        resolution = as_text(get("resolution"))
        rows.append(("Resolution", resolution or "none proposed"))
    elif item.kind == "site_warning":
        add("Site", ("site_name", "site_id"), site_label(get("site_name"), get("site_id")))
        add("Operation", ("operation_id",), as_text(get("operation_id")))
        add("Party", ("party_id",), party_label(get("party_id"), parties))
        add("Distance", ("distance_m",), fmt_distance(get("distance_m")))
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
    name_text, id_text = as_text(name), as_text(site_id)
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
        as_text(get("conflict_id")),
        f"{as_text(get('operation_a'))} / {party_label(get('party_a'), parties)}",
        f"{as_text(get('operation_b'))} / {party_label(get('party_b'), parties)}",
        fmt_number(get("overlap_area_km2"), 2),
        fmt_number(get("altitude_overlap_m")),
        fmt_duration(get("time_overlap_s")),
        fmt_number(get("min_separation_m")),
        as_text(get("adjusting_operation")),
        as_text(get("resolution")) or "none proposed",
    ]


def _warning_cells(item: Item, parties: dict[str, str]) -> list[str]:
    get = item.get
    return [
        site_label(get("site_name"), get("site_id")),
        as_text(get("operation_id")),
        party_label(get("party_id"), parties),
        fmt_distance(get("distance_m")),
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
        if item.kind == "volume" and as_text(item.get("volume_index")) in ("", "0"):
            label = as_text(item.get("operation_id"))
        elif item.kind == "protected_site":
            label = as_text(item.get("name")) or as_text(item.get("site_id"))
        buffer_m = as_float(item.get("buffer_m")) if item.kind == "protected_site" else None
        out.append({"index": item.index, "kind": item.kind, "geometry": _geometry(item), "anchor": list(anchor),
                    "label": label, "operation_id": as_text(item.get("operation_id")),
                    "buffer_m": buffer_m if buffer_m is not None and buffer_m > 0 else 0.0})
    return out
