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


def arc_vertex_count(radius_m: float, lat: float = 0.0) -> int:
    """Number of vertices for a circle of ``radius_m`` at latitude ``lat`` so the chord sag stays within tolerance.

    Edges are straight in lon/lat, which bows them towards the equator by about L^2 tan(lat) / 8R compared with
    a great circle; the count grows with the latitude to keep the total sag within the tolerance.
    """
    reach_lat = min(abs(lat) + radius_m / 111_000.0, 85.0)
    bow = 1.0 + radius_m * math.tan(math.radians(reach_lat)) / 6_371_000.0
    tolerance = max(CHORD_TOLERANCE_M, radius_m * 1e-3) / bow
    if radius_m <= tolerance:
        return 16
    # 0.8: margin for edges being straight in lon/lat rather than on the ellipsoid
    half_angle = math.acos(1.0 - 0.8 * tolerance / radius_m)
    return int(min(1440, max(16, math.ceil(math.pi / half_angle))))


def geodesic_circle_ring(lon: float, lat: float, radius_m: float, n: int | None = None) -> FloatArray:
    """Return an (n+1, 2) closed ring of lon/lat points at exactly ``radius_m`` (geodesic) from the centre.

    Vertices run counter-clockwise (azimuth decreasing from north through west).
    """
    count = n if n is not None else arc_vertex_count(radius_m, lat)
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
    # a jump of more than 180 degrees between two vertices implies a span of more than 180 degrees
    if float(lons.max() - lons.min()) > 180.0:
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
    if _contains_pole(lat, radius_m):
        raise GeometryError("circle contains a pole; polar footprints are not supported")
    count = arc_vertex_count(radius_m, lat)
    ring = geodesic_circle_ring(lon, lat, circumscribed_radius_m(radius_m, lat, count), count)
    check_representable(ring, "circle", polar_limit_deg)
    return shapely.Polygon(ring)


SAG_MARGIN = 1.2
"""Factor on the planar sag and lon/lat bow estimates of :func:`circumscribed_radius_m`: the ellipsoid and the
lon/lat plane make the real sag up to a few per cent larger (1.3e-5 degrees over at 77 degrees of latitude)."""


def circumscribed_radius_m(radius_m: float, lat: float, count: int) -> float:
    """The geodesic radius (metres) on which to place ``count`` vertices so that the polygon, whose edges are
    straight in lon/lat, contains the true circle of ``radius_m`` around a centre at latitude ``lat`` (degrees).

    A chord between two vertices ``2 pi / count`` apart sags ``r (1 - cos(pi / count))`` inside their radius ``r``,
    and an edge straight in lon/lat bows towards the equator by up to ``L^2 tan(lat) / 8 R`` against the chord of
    length ``L`` (R = 6,371 km, the latitude taken at the circle's poleward edge), so the vertices go on
    ``radius + 1.2 x (sag + bow) + 1 cm`` (:data:`SAG_MARGIN`). The excess over the true circle (the stated bound,
    checked by tests/test_conservative_geometry.py) is this radius minus ``radius_m``: at most 1.1 x the chord tolerance
    (``CHORD_TOLERANCE_M`` = 10 m up to a 10 km radius, 0.1 % of the radius above: 33 m at 30 km; 0.98 of the
    tolerance worst measured, 28.5 m at 30 km).
    """
    half = math.pi / count
    out = radius_m / math.cos(half)
    reach_lat = min(abs(lat) + out / 111_000.0, 89.0)
    chord = 2.0 * out * math.sin(half)
    bow = chord * chord * math.tan(math.radians(reach_lat)) / (8.0 * 6_371_000.0)
    return radius_m + SAG_MARGIN * (out - radius_m + bow) + 0.01


def _contains_pole(lat: float, radius_m: float) -> bool:
    pole_lat = 90.0 if lat >= 0 else -90.0
    _, _, dist = GEOD.inv(0.0, lat, 0.0, pole_lat)
    return bool(dist <= radius_m)


def _segment_samples(
    lon1: float, lat1: float, lon2: float, lat2: float, straight_in_lonlat: bool = False
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Points from 1 to 2 (both ends included), along the geodesic or, with ``straight_in_lonlat``, along the
    straight lon/lat line (a polygon edge), with the forward azimuth of the line at each point."""
    _, _, length = GEOD.inv(lon1, lat1, lon2, lat2)
    # side chords are straight in lon/lat and bow by about L^2 tan(lat) / 8R: shorten them towards the poles
    tan_lat = math.tan(math.radians(min(max(abs(lat1), abs(lat2)) + 1.0, 89.0)))
    spacing = min(CORRIDOR_SAMPLE_SPACING_M, math.sqrt(8 * 6_371_000.0 * 0.8 * CHORD_TOLERANCE_M / tan_lat))
    steps = max(1, math.ceil(length / spacing))
    if straight_in_lonlat:
        f = np.linspace(0.0, 1.0, steps + 1)
        lons, lats = lon1 + f * (lon2 - lon1), lat1 + f * (lat2 - lat1)
    elif steps == 1:
        lons, lats = np.array([lon1, lon2]), np.array([lat1, lat2])
    else:
        mid = np.asarray(GEOD.npts(lon1, lat1, lon2, lat2, steps - 1), dtype=float)
        lons = np.concatenate([[lon1], mid[:, 0], [lon2]])
        lats = np.concatenate([[lat1], mid[:, 1], [lat2]])
    # forward azimuth at each sample towards the next one; at the last sample, the arrival azimuth
    az_next, az_back, _ = GEOD.inv(lons[:-1], lats[:-1], lons[1:], lats[1:])
    arrival = (float(np.asarray(az_back)[-1]) + 180.0) % 360.0
    return lons, lats, np.append(np.asarray(az_next, dtype=float), arrival)


def geodesic_corridor(
    path: FloatArray | list[tuple[float, float]], half_width_m: float, polar_limit_deg: float = 85.0
) -> BaseGeometry:
    """All points within ``half_width_m`` (geodesic) of the polyline ``path``, as a lon/lat polygon.

    Corridors reaching less than ``LOCAL_PROJECTION_REACH_M`` from their centre are buffered in a local
    azimuthal-equidistant projection (error under 1 m); longer ones are built from geodesic ribbons.
    """
    pts = np.asarray(path, dtype=float)
    if half_width_m <= 0 or not math.isfinite(half_width_m):
        raise GeometryError(f"corridor half-width must be a positive number of metres, got {half_width_m!r}")
    local = local_buffer(pts, half_width_m, as_line=True)
    if local is not None:
        check_representable(np.asarray(shapely.get_coordinates(local)), "corridor", polar_limit_deg)
        return local
    return _ribbon_corridor(pts, half_width_m, polar_limit_deg)


def _ribbon_corridor(
    pts: FloatArray, half_width_m: float, polar_limit_deg: float, straight_in_lonlat: bool = False
) -> BaseGeometry:
    """The corridor as a union of geodesic ribbons along each segment (samples offset at +/-90 degrees of the
    local azimuth by exactly ``half_width_m``) and a geodesic circle at every vertex (round joins and caps)."""
    parts: list[BaseGeometry] = []
    for (lon, lat) in pts:
        parts.append(shapely.Polygon(geodesic_circle_ring(float(lon), float(lat), half_width_m)))
    for i in range(len(pts) - 1):
        (lon1, lat1), (lon2, lat2) = pts[i], pts[i + 1]
        if lon1 == lon2 and lat1 == lat2:
            continue
        lons, lats, az = _segment_samples(float(lon1), float(lat1), float(lon2), float(lat2), straight_in_lonlat)
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


@lru_cache(maxsize=4096)
def _aeqd(lon0: float, lat0: float) -> pyproj.Transformer:
    # a PROJ pipeline is ~50x cheaper to create than a CRS-to-CRS transformer
    return pyproj.Transformer.from_pipeline(
        "+proj=pipeline +step +proj=unitconvert +xy_in=deg +xy_out=rad "
        f"+step +proj=aeqd +lat_0={lat0} +lon_0={lon0} +ellps=WGS84"
    )


def _snap(value: float) -> float:
    return round(value * 2) / 2


def local_projection(lon: float, lat: float) -> pyproj.Transformer:
    """A WGS84 azimuthal-equidistant projection (metres) near (lon, lat): ``transform`` goes lon/lat -> x/y,
    ``transform(..., direction="INVERSE")`` back. The centre is snapped to a 0.5-degree grid (cached)."""
    return _aeqd(_snap(lon), _snap(lat))


def _transform(geom: BaseGeometry, transformer: pyproj.Transformer, inverse: bool = False) -> BaseGeometry:
    direction = "INVERSE" if inverse else "FORWARD"

    def fn(coords: Any) -> Any:
        x, y = transformer.transform(coords[:, 0], coords[:, 1], direction=direction)
        return np.column_stack([x, y])

    return shapely.transform(geom, fn)


def _reach_m(coords: FloatArray, lon0: float, lat0: float) -> float:
    """An upper bound (m) of the geodesic distance from (lon0, lat0) to any point of the bounding box of
    ``coords``: degree differences scaled by the largest metres-per-degree on WGS84 (111,695 m of latitude,
    111,320 m x cos(lat) of longitude at the lowest latitude of the box), with a 1 % margin."""
    dlon = max(abs(float(coords[:, 0].min()) - lon0), abs(float(coords[:, 0].max()) - lon0))
    dlat = max(abs(float(coords[:, 1].min()) - lat0), abs(float(coords[:, 1].max()) - lat0))
    lowest = min(abs(float(coords[:, 1].min())), abs(float(coords[:, 1].max())), abs(lat0))
    if coords[:, 1].min() < 0 < coords[:, 1].max():
        lowest = 0.0
    x = dlon * 111_320.0 * math.cos(math.radians(lowest))
    y = dlat * 111_695.0
    return 1.01 * math.hypot(x, y)


DENSIFY_SPACING_M = 5_000.0
"""Corridor paths are densified along their geodesics to this spacing (m) before projection."""

SHORT_SEGMENT_M = 40_000.0
"""Corridor segments up to this length (m) are used as they are in the local projection."""

DENSIFY_SPACING_DEG = 0.05
"""Polygon edges (straight in lon/lat) are densified to this spacing (degrees) before projection."""


def _densify_lonlat(ring: FloatArray, spacing_deg: float) -> FloatArray:
    closed = np.vstack([ring, ring[:1]])
    dense = np.asarray(shapely.get_coordinates(shapely.segmentize(shapely.LineString(closed), spacing_deg)))
    return dense[:-1]


def _densify_geodesic(path: FloatArray, spacing_m: float) -> FloatArray:
    # a straight segment in the local azimuthal projection departs from the geodesic by about L^2 rho / 8R^2:
    # under 0.5 m for segments up to 40 km, so only longer segments (roughly measured) are densified
    kx, _ = _metres_per_degree(float(np.abs(path[:, 1]).min()))
    rough = np.hypot(np.diff(path[:, 0]) * kx, np.diff(path[:, 1]) * 111_695.0)
    if float(rough.max()) <= SHORT_SEGMENT_M:
        return path
    _, _, lengths = GEOD.inv(path[:-1, 0], path[:-1, 1], path[1:, 0], path[1:, 1])
    extra = np.ceil(np.asarray(lengths) / spacing_m).astype(int) - 1
    if not np.any(extra > 0):
        return path
    out = [path[:1]]
    for i in range(len(path) - 1):
        if extra[i] > 0:
            (lon1, lat1), (lon2, lat2) = path[i], path[i + 1]
            mid = GEOD.npts(float(lon1), float(lat1), float(lon2), float(lat2), int(extra[i]))
            out.append(np.asarray(mid, dtype=np.float64))
        out.append(path[i + 1 : i + 2])
    return np.vstack(out)


def local_buffer(coords: FloatArray | list[tuple[float, float]], distance_m: float, as_line: bool = False,
                 ) -> BaseGeometry | None:
    """Points within ``distance_m`` of a lon/lat polygon ring (or polyline, ``as_line``, or single point),
    buffered in a local WGS84 azimuthal-equidistant projection.

    Returns ``None`` when the shape plus the distance reaches farther than ``LOCAL_PROJECTION_REACH_M`` from
    the projection centre, where the projection's scale error could exceed 1 m: use a geodesic ribbon then.
    """
    pts = np.asarray(coords, dtype=float)
    if len(pts) > 1:
        pts = _densify_geodesic(pts, DENSIFY_SPACING_M) if as_line else _densify_lonlat(pts, DENSIFY_SPACING_DEG)
    centre_lon = (pts[:, 0].min() + pts[:, 0].max()) / 2
    centre_lat = (pts[:, 1].min() + pts[:, 1].max()) / 2
    if _reach_m(pts, _snap(centre_lon), _snap(centre_lat)) + distance_m > LOCAL_PROJECTION_REACH_M:
        return None
    proj = local_projection(centre_lon, centre_lat)
    x, y = proj.transform(pts[:, 0], pts[:, 1])
    local_pts = np.column_stack([x, y])
    if len(local_pts) == 1:
        local: BaseGeometry = shapely.Point(local_pts[0])
    elif as_line:
        local = shapely.LineString(local_pts)
    else:
        local = shapely.Polygon(local_pts)
    quad_segs = max(4, math.ceil(arc_vertex_count(distance_m) / 4))
    # edges come back straight in lon/lat, bowing by about L^2 tan(lat) / 8R: keep them under 5 km (< 0.5 m)
    grown = shapely.segmentize(local.buffer(distance_m, quad_segs=quad_segs), 5_000.0)
    return _transform(grown, proj, inverse=True)


def geodesic_buffer(geom: BaseGeometry, distance_m: float, polar_limit_deg: float = 85.0) -> BaseGeometry:
    """All points within ``distance_m`` (geodesic, metres) of a lon/lat polygon or point.

    A point gets an exact geodesic circle. Shapes reaching less than ``LOCAL_PROJECTION_REACH_M`` from their
    centre are buffered in a local WGS84 azimuthal-equidistant projection (error under 1 m, see that constant);
    larger ones get a geodesic ribbon along their boundary.
    """
    if distance_m <= 1e-6:  # a micrometre: nothing a projection round trip can represent
        return geom
    if isinstance(geom, shapely.Point):
        return geodesic_circle(geom.x, geom.y, distance_m, polar_limit_deg)
    out = None
    if isinstance(geom, shapely.Polygon) and not geom.interiors:
        out = local_buffer(np.asarray(geom.exterior.coords)[:-1], distance_m)
    if out is None:
        rings = [np.asarray(r.coords) for r in _rings(geom)]
        parts: list[BaseGeometry] = [geom]
        for ring in rings:
            parts.append(_ribbon_corridor(ring, distance_m, polar_limit_deg, straight_in_lonlat=True))
        out = shapely.union_all(parts)
    check_representable(np.asarray(shapely.get_coordinates(out)), "buffered footprint", polar_limit_deg)
    return out


def _rings(geom: BaseGeometry) -> list[Any]:
    if isinstance(geom, shapely.Polygon):
        return [geom.exterior, *geom.interiors]
    if isinstance(geom, shapely.MultiPolygon):
        return [r for p in geom.geoms for r in _rings(p)]
    return [geom]


METRES_PER_DEGREE_LAT_MIN = 110_574.0
"""Fewest metres in one degree of latitude on WGS84 (at the equator)."""

EQUATORIAL_RADIUS_M = 6_378_137.0


def expanded_bounds(
    bounds: tuple[float, float, float, float], distance_m: float
) -> tuple[float, float, float, float] | None:
    """A lon/lat box containing every point within ``distance_m`` (geodesic) of a shape with these bounds.

    Conservative (1 % margin) for distances up to 100 km and latitudes up to 75 degrees; ``None`` outside that
    range, where the caller should take the bounds of the real buffer instead.
    """
    minx, miny, maxx, maxy = bounds
    if distance_m <= 0:
        return bounds
    # the footprint and its buffer are polygons inscribed in curves: allow their chord sag on both
    size_m = math.hypot(maxx - minx, maxy - miny) * 111_320.0
    distance_m += 2 * (CHORD_TOLERANCE_M + 1e-3 * (size_m + distance_m))
    dlat = 1.01 * distance_m / METRES_PER_DEGREE_LAT_MIN + 1e-9  # 1e-9: round-off of projected buffers
    far_lat = max(abs(miny - dlat), abs(maxy + dlat))
    if distance_m > 100_000.0 or far_lat > 75.0:
        return None
    dlon = 1.01 * math.degrees(distance_m / (EQUATORIAL_RADIUS_M * math.cos(math.radians(far_lat)))) + 1e-9
    return (minx - dlon, miny - dlat, maxx + dlon, maxy + dlat)


def _metres_per_degree(lat: float) -> tuple[float, float]:
    """Metres per degree of longitude and of latitude on WGS84 at latitude ``lat``."""
    e2 = 6.69437999014e-3
    phi = math.radians(lat)
    w = math.sqrt(1.0 - e2 * math.sin(phi) ** 2)
    n = EQUATORIAL_RADIUS_M / w
    m = EQUATORIAL_RADIUS_M * (1.0 - e2) / w**3
    return math.radians(1.0) * n * math.cos(phi), math.radians(1.0) * m


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
    proj = local_projection((pa.x + pb.x) / 2, (pa.y + pb.y) / 2)
    qa, qb = _nearest(_transform(a, proj), _transform(b, proj))
    (ax, bx), (ay, by) = proj.transform([qa.x, qb.x], [qa.y, qb.y], direction="INVERSE")
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
