"""Geodesic constructions on the WGS84 ellipsoid, through pyproj.

Every coordinate is (longitude, latitude) in degrees on WGS84 (EPSG:4326 axis order lon/lat, as in
GeoJSON). Every distance is in metres, measured along the ellipsoid by ``pyproj.Geod``.

Shapes are returned as shapely polygons in lon/lat whose edges are straight in lon/lat (plate carrée),
as GeoJSON assumes. Curves (circle arcs, corridor sides, buffer arcs) are sampled densely enough that
the chord between two samples departs from the true curve by at most ``CHORD_TOLERANCE_M`` (or 0.1 %
of the radius for radii over 10 km).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
import pyproj
import shapely
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry

GEOD = pyproj.Geod(ellps="WGS84")
"""The WGS84 ellipsoid used for every distance, azimuth and area."""

CHORD_TOLERANCE_M = 10.0
"""Largest sag, in metres, between a sampled arc and the true geodesic circle for radii up to 10 km."""

LOCAL_PROJECTION_REACH_M = 100_000.0
"""Largest distance from the centre of a local azimuthal-equidistant projection at which Forewarn uses it.

At a distance rho from the centre, the transverse scale error of AEQD is about rho^2 / (6 R^2): at
100 km that is 4e-5, i.e. under 1 m on a 20 km buffer. Larger shapes are buffered with geodesic ribbons.
"""

CORRIDOR_SAMPLE_SPACING_M = 10_000.0
"""Spacing, in metres, of the samples taken along each geodesic segment of a corridor."""

FloatArray = NDArray[np.float64]


class GeometryError(ValueError):
    """A footprint that cannot be represented: crosses the antimeridian, reaches a pole, degenerate."""


def arc_vertex_count(radius_m: float) -> int:
    """Number of vertices for a circle of ``radius_m`` so the chord sag stays within tolerance."""
    tolerance = max(CHORD_TOLERANCE_M, radius_m * 1e-3)
    if radius_m <= tolerance:
        return 16
    half_angle = math.acos(1.0 - tolerance / radius_m)
    return int(min(720, max(16, math.ceil(math.pi / half_angle))))


def geodesic_circle_ring(lon: float, lat: float, radius_m: float, n: int | None = None) -> FloatArray:
    """Return an (n+1, 2) closed ring of lon/lat points at exactly ``radius_m`` (geodesic) from the centre.

    Vertices run counter-clockwise (azimuth decreasing from north through west).
    """
    count = n if n is not None else arc_vertex_count(radius_m)
    azimuths = np.linspace(360.0, 0.0, count, endpoint=False)
    lons, lats, _ = GEOD.fwd(
        np.full(count, lon), np.full(count, lat), azimuths, np.full(count, float(radius_m))
    )
    ring = np.column_stack([lons, lats])
    return np.vstack([ring, ring[:1]])


def check_representable(ring: FloatArray, what: str, polar_limit_deg: float) -> None:
    """Reject rings that cross the antimeridian or come nearer a pole than ``polar_limit_deg``.

    Forewarn keeps footprints in plain lon/lat; a shape straddling longitude +/-180 degrees or reaching
    beyond ``polar_limit_deg`` latitude would be misread there, so it is refused with a clear reason.
    """
    lons = ring[:, 0]
    lats = ring[:, 1]
    if np.any(np.abs(np.diff(lons)) > 180.0) or float(lons.max() - lons.min()) > 180.0:
        raise GeometryError(
            f"{what} crosses the antimeridian (longitude +/-180 degrees); "
            "split it into two volumes, one on each side of the line"
        )
    if float(np.abs(lats).max()) > polar_limit_deg:
        raise GeometryError(
            f"{what} reaches latitude {float(np.abs(lats).max()):.3f} degrees, beyond the polar limit of "
            f"{polar_limit_deg} degrees; polar footprints are not supported"
        )


def geodesic_circle(lon: float, lat: float, radius_m: float, polar_limit_deg: float = 85.0) -> shapely.Polygon:
    """A circle of geodesic radius ``radius_m`` around (lon, lat) as a lon/lat polygon."""
    if radius_m <= 0 or not math.isfinite(radius_m):
        raise GeometryError(f"circle radius must be a positive number of metres, got {radius_m!r}")
    ring = geodesic_circle_ring(lon, lat, radius_m)
    check_representable(ring, "circle", polar_limit_deg)
    if _contains_pole(lat, radius_m):
        raise GeometryError("circle contains a pole; polar footprints are not supported")
    return shapely.Polygon(ring)


def _contains_pole(lat: float, radius_m: float) -> bool:
    pole_lat = 90.0 if lat >= 0 else -90.0
    _, _, dist = GEOD.inv(0.0, lat, 0.0, pole_lat)
    return bool(dist <= radius_m)


def _segment_samples(lon1: float, lat1: float, lon2: float, lat2: float) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Points along the geodesic from 1 to 2 (both ends included) and the forward azimuth at each."""
    az12, _, length = GEOD.inv(lon1, lat1, lon2, lat2)
    steps = max(1, math.ceil(length / CORRIDOR_SAMPLE_SPACING_M))
    if steps == 1:
        lons = np.array([lon1, lon2])
        lats = np.array([lat1, lat2])
    else:
        inter = GEOD.inv_intermediate(lon1, lat1, lon2, lat2, npts=steps - 1, return_back_azimuth=False)
        lons = np.concatenate([[lon1], np.asarray(inter.lons), [lon2]])
        lats = np.concatenate([[lat1], np.asarray(inter.lats), [lat2]])
    # forward azimuth at each sample: towards the next sample, and for the last one from the previous.
    az, _, _ = GEOD.inv(lons[:-1], lats[:-1], lons[1:], lats[1:])
    az = np.append(np.asarray(az, dtype=float), GEOD.inv(lons[-1], lats[-1], lons[-2], lats[-2])[1])
    if length == 0:
        az = np.full(len(lons), az12)
    return lons, lats, az


def geodesic_corridor(
    path: FloatArray | list[tuple[float, float]], half_width_m: float, polar_limit_deg: float = 85.0
) -> BaseGeometry:
    """All points within ``half_width_m`` (geodesic) of the polyline ``path``, as a lon/lat polygon.

    Built from a ribbon along each geodesic segment (samples offset at +/-90 degrees of the local
    azimuth by exactly ``half_width_m``) and a geodesic circle at every vertex (round joins and caps).
    """
    pts = np.asarray(path, dtype=float)
    if half_width_m <= 0 or not math.isfinite(half_width_m):
        raise GeometryError(f"corridor half-width must be a positive number of metres, got {half_width_m!r}")
    parts: list[BaseGeometry] = []
    for (lon, lat) in pts:
        parts.append(shapely.Polygon(geodesic_circle_ring(float(lon), float(lat), half_width_m)))
    for i in range(len(pts) - 1):
        (lon1, lat1), (lon2, lat2) = pts[i], pts[i + 1]
        if lon1 == lon2 and lat1 == lat2:
            continue
        lons, lats, az = _segment_samples(float(lon1), float(lat1), float(lon2), float(lat2))
        dist = np.full(len(lons), float(half_width_m))
        llon, llat, _ = GEOD.fwd(lons, lats, az - 90.0, dist)
        rlon, rlat, _ = GEOD.fwd(lons, lats, az + 90.0, dist)
        ring = np.vstack([np.column_stack([rlon, rlat]), np.column_stack([llon, llat])[::-1]])
        check_representable(ring, "corridor", polar_limit_deg)
        ribbon = shapely.Polygon(np.vstack([ring, ring[:1]]))
        parts.append(ribbon if ribbon.is_valid else shapely.make_valid(ribbon))
    merged = shapely.union_all(parts)
    check_representable(np.asarray(shapely.get_coordinates(merged)), "corridor", polar_limit_deg)
    return merged


@lru_cache(maxsize=2048)
def _aeqd(lon0: float, lat0: float) -> tuple[pyproj.Transformer, pyproj.Transformer]:
    crs = pyproj.CRS.from_proj4(f"+proj=aeqd +lat_0={lat0} +lon_0={lon0} +ellps=WGS84 +units=m +no_defs")
    fwd = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    inv = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    return fwd, inv


def local_projection(lon: float, lat: float) -> tuple[pyproj.Transformer, pyproj.Transformer]:
    """Forward and inverse transformers of a WGS84 azimuthal-equidistant projection near (lon, lat).

    The centre is snapped to a 0.5-degree grid so transformers can be cached and reused.
    """
    return _aeqd(round(lon * 2) / 2, round(lat * 2) / 2)


def _transform(geom: BaseGeometry, transformer: pyproj.Transformer) -> BaseGeometry:
    def fn(coords: Any) -> Any:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geom, fn)


def _reach_m(geom: BaseGeometry, lon0: float, lat0: float, extra_m: float) -> float:
    coords = np.asarray(shapely.get_coordinates(geom))
    _, _, dist = GEOD.inv(np.full(len(coords), lon0), np.full(len(coords), lat0), coords[:, 0], coords[:, 1])
    return float(np.max(dist)) + extra_m


def geodesic_buffer(geom: BaseGeometry, distance_m: float, polar_limit_deg: float = 85.0) -> BaseGeometry:
    """All points within ``distance_m`` (geodesic, metres) of a lon/lat polygon or point.

    Shapes reaching less than ``LOCAL_PROJECTION_REACH_M`` from their centre are buffered in a local
    WGS84 azimuthal-equidistant projection (error under 1 m, see that constant); larger ones get a
    geodesic ribbon along their boundary.
    """
    if distance_m <= 0:
        return geom
    centre = geom.centroid
    fwd, inv = local_projection(centre.x, centre.y)
    snapped_lon, snapped_lat = round(centre.x * 2) / 2, round(centre.y * 2) / 2
    if _reach_m(geom, snapped_lon, snapped_lat, distance_m) <= LOCAL_PROJECTION_REACH_M:
        local = _transform(shapely.segmentize(geom, 0.02), fwd)
        quad_segs = max(4, arc_vertex_count(distance_m) // 4)
        out = _transform(local.buffer(distance_m, quad_segs=quad_segs), inv)
    else:
        rings = [np.asarray(r.coords) for r in _rings(geom)]
        parts: list[BaseGeometry] = [geom]
        for ring in rings:
            parts.append(geodesic_corridor(ring, distance_m, polar_limit_deg))
        out = shapely.union_all(parts)
    check_representable(np.asarray(shapely.get_coordinates(out)), "buffered footprint", polar_limit_deg)
    return out


def _rings(geom: BaseGeometry) -> list[Any]:
    if isinstance(geom, shapely.Polygon):
        return [geom.exterior, *geom.interiors]
    if isinstance(geom, shapely.MultiPolygon):
        return [r for p in geom.geoms for r in _rings(p)]
    if isinstance(geom, shapely.Point):
        return [shapely.LineString([geom, geom])]
    return [geom]


def geodesic_area_m2(geom: BaseGeometry) -> float:
    """Area of a lon/lat polygon on the WGS84 ellipsoid, in square metres."""
    if geom.is_empty:
        return 0.0
    area, _ = GEOD.geometry_area_perimeter(geom)
    return abs(float(area))


def geodesic_distance_m(a: BaseGeometry, b: BaseGeometry) -> float:
    """Smallest distance between two lon/lat shapes, in metres (0 when they touch or overlap).

    Measured in a local azimuthal-equidistant projection centred between them, then the nearest points are
    re-measured with ``pyproj.Geod`` so the figure is geodesic.
    """
    if a.intersects(b):
        return 0.0
    pa, pb = _nearest(a, b)
    fwd, inv = local_projection((pa.x + pb.x) / 2, (pa.y + pb.y) / 2)
    qa, qb = _nearest(_transform(a, fwd), _transform(b, fwd))
    (ax,), (ay,) = inv.transform([qa.x], [qa.y])
    (bx,), (by,) = inv.transform([qb.x], [qb.y])
    _, _, dist = GEOD.inv(ax, ay, bx, by)
    return float(dist)


def _nearest(a: BaseGeometry, b: BaseGeometry) -> tuple[shapely.Point, shapely.Point]:
    line = shapely.shortest_line(a, b)
    (x1, y1), (x2, y2) = line.coords
    return shapely.Point(x1, y1), shapely.Point(x2, y2)


def offset_point(lon: float, lat: float, azimuth_deg: float, distance_m: float) -> tuple[float, float]:
    """The point reached from (lon, lat) along the geodesic of ``azimuth_deg`` after ``distance_m``."""
    lon2, lat2, _ = GEOD.fwd(lon, lat, azimuth_deg, distance_m)
    return float(lon2), float(lat2)


def offset_points(coords: FloatArray, azimuth_deg: float, distance_m: float) -> FloatArray:
    """Move every lon/lat point of ``coords`` (shape (n, 2)) by ``distance_m`` along ``azimuth_deg``."""
    n = len(coords)
    lons, lats, _ = GEOD.fwd(coords[:, 0], coords[:, 1], np.full(n, azimuth_deg), np.full(n, distance_m))
    return np.column_stack([lons, lats])
