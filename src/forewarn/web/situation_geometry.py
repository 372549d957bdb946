"""GeoJSON geometry of the exported situation map, read defensively: positions, rings, polygons and points in
WGS84 longitude/latitude degrees; anything malformed is dropped, never raised."""

from __future__ import annotations

import math

from forewarn.web.situation_values import as_float

KM_PER_DEG_LAT = 6371.0088 * math.pi / 180.0
"""Kilometres per degree of latitude on the mean Earth sphere (IUGG mean radius 6371.0088 km)."""

LonLat = tuple[float, float]
Ring = list[LonLat]
Polygon = list[Ring]


def read_position(value: object) -> LonLat | None:
    """A GeoJSON position ``[lon, lat, ...]`` in WGS84 degrees, or ``None`` if it is not one."""
    if not isinstance(value, list | tuple) or len(value) < 2:
        return None
    lon = as_float(value[0])
    lat = as_float(value[1])
    if lon is None or lat is None or abs(lat) > 90.0 or abs(lon) > 360.0:
        return None
    return (lon, lat)


def read_ring(value: object) -> Ring | None:
    """A linear ring of at least three valid positions, or ``None``."""
    if not isinstance(value, list | tuple):
        return None
    points = [p for p in (read_position(item) for item in value) if p is not None]
    return points if len(points) >= 3 else None


def read_polygon(value: object) -> Polygon | None:
    """A polygon (exterior ring then holes) from GeoJSON Polygon coordinates, or ``None``."""
    if not isinstance(value, list | tuple) or not value:
        return None
    exterior = read_ring(value[0])
    if exterior is None:
        return None
    holes = [r for r in (read_ring(item) for item in value[1:]) if r is not None]
    return [exterior, *holes]


def read_polygons(geometry: object) -> list[Polygon]:
    """The polygons of a Polygon or MultiPolygon geometry (empty for anything else or bad input)."""
    if not isinstance(geometry, dict):
        return []
    kind = geometry.get("type")
    coordinates = geometry.get("coordinates")
    if kind == "Polygon":
        single = read_polygon(coordinates)
        return [single] if single is not None else []
    if kind == "MultiPolygon" and isinstance(coordinates, list | tuple):
        return [p for p in (read_polygon(item) for item in coordinates) if p is not None]
    return []


def read_point(geometry: object) -> LonLat | None:
    """The position of a Point geometry, or ``None``."""
    if not isinstance(geometry, dict) or geometry.get("type") != "Point":
        return None
    return read_position(geometry.get("coordinates"))


def circle_bounds(lon: float, lat: float, radius_m: float) -> list[LonLat]:
    """Corner positions (degrees) of the box around a circle of ``radius_m`` metres."""
    dlat = radius_m / 1000.0 / KM_PER_DEG_LAT
    dlon = dlat / max(math.cos(math.radians(lat)), 0.01)
    return [(lon - dlon, lat - dlat), (lon + dlon, lat + dlat)]
