"""Geodesic constructions checked against an independent measure: ``pyproj.Geod(ellps="WGS84")``.

Every distance below is re-measured here with its own ``Geod`` (never with the library's helpers), from the
centre of a circle, from a densified path (geodesic segments, for corridors) or from a densified polygon
boundary (straight lon/lat edges, as the library's shapes are defined).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pyproj
import pytest
import shapely
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from forewarn.geo.geodesy import (
    GeometryError,
    circumscribed_radius_m,
    geodesic_area_m2,
    geodesic_buffer,
    geodesic_circle,
    geodesic_corridor,
    geodesic_distance_m,
    offset_point,
    offset_points,
)
from forewarn.geo.volume import CircleFootprint, CorridorFootprint, PolygonFootprint

GEOD = pyproj.Geod(ellps="WGS84")
HYPO = settings(deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow])

DOCUMENTED_SAG_M = 10.0
"""The chord tolerance the geodesy module documents (10 m, or 0.1 % of the radius above 10 km)."""


def sag_tolerance(radius_m: float) -> float:
    return max(DOCUMENTED_SAG_M, 1e-3 * radius_m)


# ---------------------------------------------------------------------------------------------- helpers


def exterior(geom: shapely.geometry.base.BaseGeometry) -> np.ndarray:
    assert geom.geom_type == "Polygon", geom.geom_type
    return np.asarray(geom.exterior.coords)


def dist_from(lon: float, lat: float, lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
    n = len(lons)
    _, _, d = GEOD.inv(np.full(n, lon), np.full(n, lat), np.asarray(lons, float), np.asarray(lats, float))
    return np.asarray(d)


def geodesic_samples(path: list[tuple[float, float]], spacing_m: float) -> np.ndarray:
    """The polyline ``path`` (geodesic segments) sampled every ``spacing_m`` at most, ends included."""
    out: list[tuple[float, float]] = [path[0]]
    for (lon1, lat1), (lon2, lat2) in itertools.pairwise(path):
        _, _, length = GEOD.inv(lon1, lat1, lon2, lat2)
        n = math.ceil(length / spacing_m) - 1
        if n > 0:
            out.extend(GEOD.npts(lon1, lat1, lon2, lat2, n))
        out.append((lon2, lat2))
    return np.asarray(out, dtype=float)


def straight_samples(ring: np.ndarray, spacing_deg: float) -> np.ndarray:
    """A lon/lat ring (straight edges in lon/lat) sampled every ``spacing_deg`` degrees at most."""
    return np.asarray(shapely.segmentize(shapely.LineString(ring), spacing_deg).coords)


def spacing_for(distance_m: float) -> float:
    """Sample spacing along a line such that the discretisation error at ``distance_m`` is under 5 cm."""
    return min(100.0, math.sqrt(8.0 * distance_m * 0.05))


class NearestDistance:
    """Geodesic distance from a point to a densely sampled line, exact to the sampling.

    A coarse pass over every ``stride``-th sample bounds where the nearest sample can be (triangle
    inequality with the path length between coarse samples); only those stretches are measured finely.
    """

    def __init__(self, samples: np.ndarray, stride: int = 40) -> None:
        self.lons = samples[:, 0]
        self.lats = samples[:, 1]
        n = len(samples)
        idx = np.arange(0, n, stride)
        if idx[-1] != n - 1:
            idx = np.append(idx, n - 1)
        self.idx = idx
        _, _, steps = GEOD.inv(self.lons[:-1], self.lats[:-1], self.lons[1:], self.lats[1:])
        cum = np.concatenate([[0.0], np.cumsum(steps)])
        self.half_len = (cum[idx[1:]] - cum[idx[:-1]]) / 2.0

    def __call__(self, lon: float, lat: float) -> float:
        coarse = dist_from(lon, lat, self.lons[self.idx], self.lats[self.idx])
        best = float(coarse.min())
        near = np.minimum(coarse[:-1], coarse[1:]) - self.half_len <= best
        fine = np.concatenate([np.arange(self.idx[i], self.idx[i + 1] + 1) for i in np.flatnonzero(near)])
        return min(best, float(dist_from(lon, lat, self.lons[fine], self.lats[fine]).min()))

    def many(self, points: np.ndarray) -> np.ndarray:
        return np.array([self(float(x), float(y)) for x, y in points])


def ring_points_around(lon: float, lat: float, distance_m: float, count: int = 72) -> np.ndarray:
    az = np.linspace(0.0, 360.0, count, endpoint=False)
    lons, lats, _ = GEOD.fwd(np.full(count, lon), np.full(count, lat), az, np.full(count, distance_m))
    return np.column_stack([lons, lats])


def perpendicular_offsets(path: list[tuple[float, float]], distance_m: float, every_m: float) -> np.ndarray:
    """Points ``distance_m`` either side of the geodesic path, perpendicular to it, every ``every_m``."""
    samples = geodesic_samples(path, every_m)
    # local azimuth at each sample, measured towards a point 1 m further along its segment
    out = []
    for (lon1, lat1), (lon2, lat2) in itertools.pairwise(path):
        _, _, length = GEOD.inv(lon1, lat1, lon2, lat2)
        n = max(1, math.ceil(length / every_m))
        az12, _, _ = GEOD.inv(lon1, lat1, lon2, lat2)
        for k in range(n):
            lon, lat, back = GEOD.fwd(lon1, lat1, az12, length * k / n)
            az = back + 180.0  # forward azimuth at that point
            for side in (-90.0, 90.0):
                x, y, _ = GEOD.fwd(lon, lat, az + side, distance_m)
                out.append((x, y))
    assert len(samples) > 1
    return np.asarray(out)


def covered(geom: shapely.geometry.base.BaseGeometry, points: np.ndarray) -> np.ndarray:
    return np.asarray(shapely.covers(geom, shapely.points(points[:, 0], points[:, 1])))


# ------------------------------------------------------------------------------------ 1. circle accuracy


def assert_circle_on_radius(shape: shapely.geometry.base.BaseGeometry, lon: float, lat: float, r: float) -> None:
    coords = exterior(shape)
    assert len(coords) >= 17  # at least 16 vertices + closing one
    assert tuple(coords[0]) == tuple(coords[-1])
    # conservative circles (issue 15): every vertex on the circumscribed radius, so that no edge cuts inside the
    # true circle; that radius exceeds r by a positive amount within 1.1 x the sag tolerance
    d = dist_from(lon, lat, coords[:, 0], coords[:, 1])
    out = circumscribed_radius_m(r, lat, len(coords) - 1)
    assert 0.0 < out - r <= 1.1 * sag_tolerance(r) + 0.01
    worst = float(np.max(np.abs(d - out)))
    assert worst <= 1.0, f"vertex {worst:.3f} m off the circumscribed radius {out} m"
    assert shape.is_valid
    assert shape.contains(shapely.Point(lon, lat))


@pytest.mark.parametrize("radius_m", [100.0, 5_000.0, 50_000.0, 500_000.0])
@pytest.mark.parametrize("lat", [0.0, 45.0, -60.0, 80.0])
def test_circle_vertices_are_on_the_geodesic_radius(radius_m: float, lat: float) -> None:
    lon = 31.5
    assert_circle_on_radius(geodesic_circle(lon, lat, radius_m), lon, lat, radius_m)
    footprint = CircleFootprint(center=(lon, lat), radius_m=radius_m)
    assert_circle_on_radius(footprint.shape(), lon, lat, radius_m)


@pytest.mark.parametrize("radius_m", [1_000.0, 5_000.0, 50_000.0, 200_000.0, 500_000.0])
@pytest.mark.parametrize("lat", [0.0, 45.0, -60.0, 80.0])
def test_circle_chords_stay_within_documented_sag(radius_m: float, lat: float) -> None:
    """Between vertices, the polygon's edges (straight in lon/lat) stay within the documented tolerance
    (10 m, or 0.1 % of the radius over 10 km) of the true circle: measured at the midpoint of every edge."""
    lon = 31.5
    coords = exterior(geodesic_circle(lon, lat, radius_m))
    mid = (coords[:-1] + coords[1:]) / 2.0
    dm = dist_from(lon, lat, mid[:, 0], mid[:, 1])
    # conservative: no edge midpoint inside the true circle, and none further out than 1.1 x the tolerance
    assert dm.min() >= radius_m, f"an edge cuts {radius_m - dm.min():.2f} m inside the circle"
    assert dm.max() <= radius_m + 1.1 * sag_tolerance(radius_m) + 0.01, (
        f"{len(coords) - 1}-gon: an edge {dm.max() - radius_m:.1f} m outside, tolerance {sag_tolerance(radius_m)} m"
    )


def true_circle_crosses_antimeridian(lon: float, lat: float, r: float) -> bool:
    """Independently: does the geodesic circle reach longitude +/-180 (sampled every 0.05 degrees)?"""
    pts = ring_points_around(lon, lat, r, count=7200)
    rel = (pts[:, 0] - lon + 180.0) % 360.0 - 180.0
    return bool(np.any(np.abs(lon + rel) >= 180.0 - 1e-9))


@HYPO
@given(
    r=st.floats(50.0, 500_000.0),
    lat=st.floats(-80.0, 80.0),
    lon=st.floats(-170.0, 170.0),
)
def test_circle_vertices_on_radius_anywhere(r: float, lat: float, lon: float) -> None:
    try:
        shape = geodesic_circle(lon, lat, r, polar_limit_deg=89.0)
    except GeometryError as exc:
        # the only legitimate refusal in this range: the circle really reaches the antimeridian
        assert "antimeridian" in str(exc)
        assert true_circle_crosses_antimeridian(lon, lat, r), f"circle ({lon}, {lat}, {r}) refused: {exc}"
        return
    assert_circle_on_radius(shape, lon, lat, r)
    lons = exterior(shape)[:, 0]
    assert np.all(np.sign(lons) == np.sign(lon)) or abs(lon) < 90.0


# ---------------------------------------------------------------------------------------- 2. antimeridian


@pytest.mark.parametrize("lon", [179.9, -179.9])
def test_circle_across_antimeridian_is_refused(lon: float) -> None:
    with pytest.raises(GeometryError, match="antimeridian"):
        geodesic_circle(lon, 10.0, 50_000.0)
    with pytest.raises(GeometryError, match="antimeridian"):
        CircleFootprint(center=(lon, 10.0), radius_m=50_000.0).shape()


@pytest.mark.parametrize("lat", [0.0, 60.0, -60.0])
@pytest.mark.parametrize("lon", [179.0, -179.0])
def test_circle_near_antimeridian_stays_on_its_side(lon: float, lat: float) -> None:
    shape = CircleFootprint(center=(lon, lat), radius_m=50_000.0).shape()
    lons = exterior(shape)[:, 0]
    assert np.all(np.sign(lons) == np.sign(lon))
    assert np.all(np.abs(lons) < 180.0)
    assert np.abs(lons).max() > 179.4  # it does come close to the line
    assert_circle_on_radius(shape, lon, lat, 50_000.0)


def test_polygon_across_antimeridian_is_refused() -> None:
    footprint = PolygonFootprint(coordinates=[(179.5, 10.0), (-179.5, 10.0), (-179.5, 11.0), (179.5, 11.0)])
    with pytest.raises(GeometryError, match="antimeridian"):
        footprint.shape()


@pytest.mark.parametrize(
    "coords",
    [
        [(179.5, 10.0), (180.0, 10.0), (180.0, 11.0), (179.5, 11.0)],
        [(-180.0, 10.0), (-179.5, 10.0), (-179.5, 11.0), (-180.0, 11.0)],
    ],
)
def test_polygon_up_to_antimeridian_is_accepted(coords: list[tuple[float, float]]) -> None:
    shape = PolygonFootprint(coordinates=coords).shape()
    assert shape.is_valid
    assert shape.bounds[2] - shape.bounds[0] == pytest.approx(0.5)


@pytest.mark.parametrize(
    "path",
    [
        [(179.5, 10.0), (-179.5, 10.0)],
        [(-179.7, -20.0), (-179.9, -20.5), (179.8, -21.0)],
        [(179.95, 10.0), (179.95, 11.0)],  # path on one side, but its half-width reaches over the line
    ],
)
def test_corridor_across_antimeridian_is_refused(path: list[tuple[float, float]]) -> None:
    with pytest.raises(GeometryError, match="antimeridian"):
        CorridorFootprint(path=path, half_width_m=20_000.0).shape()
    with pytest.raises(GeometryError, match="antimeridian"):
        geodesic_corridor(path, 20_000.0)


@pytest.mark.parametrize("lon", [179.0, -179.0])
def test_corridor_near_antimeridian_stays_on_its_side(lon: float) -> None:
    shape = CorridorFootprint(path=[(lon, 10.0), (lon, 11.0)], half_width_m=50_000.0).shape()
    lons = exterior(shape)[:, 0]
    assert np.all(np.sign(lons) == np.sign(lon))
    assert np.abs(lons).max() > 179.4


# --------------------------------------------------------------------------------------------- 3. poles


@pytest.mark.parametrize("lat", [89.5, -89.5])
def test_circle_containing_a_pole_is_refused(lat: float) -> None:
    with pytest.raises(GeometryError):
        geodesic_circle(20.0, lat, 100_000.0)
    with pytest.raises(GeometryError):
        geodesic_circle(20.0, lat, 100_000.0, polar_limit_deg=90.0)


@pytest.mark.parametrize("lat", [89.5, -89.5])
def test_circle_containing_a_pole_is_refused_because_of_the_pole(lat: float) -> None:
    """The reason given must be the pole: 'split it at the antimeridian' cannot help a polar circle."""
    with pytest.raises(GeometryError) as info:
        geodesic_circle(20.0, lat, 100_000.0)
    assert "pol" in str(info.value).lower(), str(info.value)


def test_circle_reaching_beyond_polar_limit_is_refused() -> None:
    # centre at 84 N, 200 km radius reaches about 85.8 N: beyond the default 85-degree limit
    with pytest.raises(GeometryError, match="polar limit"):
        geodesic_circle(20.0, 84.0, 200_000.0)
    with pytest.raises(GeometryError, match="polar limit"):
        geodesic_circle(20.0, -84.0, 200_000.0)
    assert geodesic_circle(20.0, 84.0, 200_000.0, polar_limit_deg=86.0).is_valid


@pytest.mark.parametrize("lat", [86.0, -86.0])
def test_polygon_beyond_polar_limit_is_refused(lat: float) -> None:
    sign = 1.0 if lat > 0 else -1.0
    footprint = PolygonFootprint(coordinates=[(10.0, 83.0 * sign), (12.0, 83.0 * sign), (11.0, lat)])
    with pytest.raises(GeometryError, match="polar limit"):
        footprint.shape()
    assert footprint.shape(polar_limit_deg=87.0).is_valid


@pytest.mark.parametrize("lat", [84.0, -84.0])
def test_polygon_within_polar_limit_is_accepted(lat: float) -> None:
    sign = 1.0 if lat > 0 else -1.0
    shape = PolygonFootprint(coordinates=[(10.0, 83.0 * sign), (12.0, 83.0 * sign), (11.0, lat)]).shape()
    assert shape.is_valid
    assert max(abs(shape.bounds[1]), abs(shape.bounds[3])) == pytest.approx(84.0)


# ------------------------------------------------------------------------------------------ 4. corridor


def check_corridor(path: list[tuple[float, float]], w: float, vertex_sample: int | None = None) -> None:
    shape = geodesic_corridor(path, w)
    assert shape.is_valid
    coords = exterior(shape)[:-1]
    if vertex_sample is not None and len(coords) > vertex_sample:
        coords = coords[np.linspace(0, len(coords) - 1, vertex_sample).astype(int)]
    nearest = NearestDistance(geodesic_samples(path, spacing_for(w)))
    d = nearest.many(coords)
    tol = sag_tolerance(w)
    # no vertex lies beyond the half-width, but for the bulge of a straight lon/lat side chord (the side
    # samples are up to 10 km apart; such a chord bows equatorward by about 2 m * tan(lat)) ...
    bulge = 2.0 * math.tan(math.radians(max(abs(lat) for _, lat in path)))
    assert d.max() <= w + 1.0 + bulge, f"vertex {d.max() - w:.2f} m beyond the half-width"
    # ... or inside it by more than a chord sag (vertices where a ribbon edge meets a polygonal join
    # circle sit on that circle's chord), and the vertices the construction places are on the curve
    assert d.min() >= w - tol - 1.0, f"vertex {w - d.min():.2f} m inside the half-width"
    assert np.mean(np.abs(d - w) <= 1.0) >= 0.8
    # every point at (0.98 w) perpendicular to the path is inside; so is everything within w - sag of
    # each vertex (round joins and caps) and of the path (perpendicular offsets)
    assert covered(shape, perpendicular_offsets(path, 0.98 * w, every_m=w / 2)).all()
    inner = w - tol - 1.0
    offsets = perpendicular_offsets(path, inner, every_m=w / 2)
    inside = covered(shape, offsets)
    assert inside.all(), f"{(~inside).sum()} of {len(offsets)} points at {inner:.0f} m of the path are outside"
    for lon, lat in path:
        assert covered(shape, ring_points_around(lon, lat, inner)).all()
    # and nothing well outside the half-width is included
    beyond = perpendicular_offsets(path, w + tol + 1.0, every_m=w / 2)
    beyond = beyond[nearest.many(beyond) >= w + tol]  # (an offset of one segment may be near the next one)
    assert len(beyond) > 0
    assert not covered(shape, beyond).any()


@pytest.mark.parametrize(
    ("path", "w"),
    [
        ([(36.0, 35.0), (36.3, 35.2), (36.1, 35.5)], 5_000.0),
        ([(36.0, 35.0), (36.3, 35.2), (36.1, 35.5)], 20_000.0),
        ([(2.35, 48.85), (2.36, 48.86)], 500.0),
        ([(-70.0, -33.0), (-69.0, -33.5), (-68.2, -32.9), (-68.9, -32.6)], 10_000.0),
    ],
)
def test_corridor_is_the_half_width_around_the_path(path: list[tuple[float, float]], w: float) -> None:
    check_corridor(path, w)


def test_long_multi_segment_corridor() -> None:
    path = [(44.65, 43.75), (49.5, 41.0), (46.0, 35.8), (43.0, 35.3), (39.15, 35.95)]
    total = sum(GEOD.inv(*a, *b)[2] for a, b in itertools.pairwise(path))
    assert 1_500_000 < total < 1_900_000
    check_corridor(path, 20_000.0, vertex_sample=150)


@pytest.mark.parametrize("length_deg", [4.0, 20.0], ids=["short", "long"])
@pytest.mark.parametrize("lat", [45.0, -60.0, 84.0])
def test_corridor_sides_respect_chord_tolerance_at_any_latitude(lat: float, length_deg: float) -> None:
    """An east-west corridor: its lon/lat side edges must not sag more than the documented tolerance.

    A straight lon/lat chord of length L departs from the geodesic by about L^2 / (8 R) * tan(lat), so
    the spacing of the side samples has to shrink towards the poles.
    """
    path = [(0.0, lat), (length_deg, lat)]  # 20 degrees: over 200 km even at 84 N (the ribbon code path)
    w = 5_000.0
    shape = geodesic_corridor(path, w)
    inner = w - sag_tolerance(w) - 1.0
    offsets = perpendicular_offsets(path, inner, every_m=250.0)
    inside = covered(shape, offsets)
    nearest = NearestDistance(geodesic_samples(path, spacing_for(w)))
    if not inside.all():
        miss = offsets[~inside][0]
        pytest.fail(
            f"corridor at lat {lat}: {(~inside).sum()} points at {inner} m from the path (measured "
            f"{nearest(*miss):.2f} m) are outside; the side chords sag more than {sag_tolerance(w)} m"
        )


# -------------------------------------------------------------------------------------------- 5. buffer

SMALL_POLYGON = shapely.Polygon([(39.0, 35.9), (39.1, 35.92), (39.06, 35.95), (39.11, 36.0), (39.02, 35.99)])
"""About 10 km across near Raqqa, with one concave corner."""


def check_buffer(
    poly: shapely.Polygon,
    d: float,
    vertex_sample: int | None = None,
    spacing_deg: float = 0.0002,
    probe_sample: int = 400,
) -> shapely.geometry.base.BaseGeometry:
    buffered = geodesic_buffer(poly, d)
    assert buffered.is_valid
    assert buffered.contains(poly)
    coords = exterior(buffered)[:-1]
    if vertex_sample is not None and len(coords) > vertex_sample:
        coords = coords[np.linspace(0, len(coords) - 1, vertex_sample).astype(int)]
    boundary = NearestDistance(straight_samples(np.asarray(poly.exterior.coords), spacing_deg))
    dist = boundary.many(coords)
    assert dist.max() <= d + 1.0, f"buffer vertex {dist.max() - d:.2f} m beyond {d} m"
    # vertices are on the offset curve, except where two of its arcs (polygonal) cross: on a chord
    assert dist.min() >= d - sag_tolerance(d) - 1.0, f"buffer vertex {d - dist.min():.2f} m inside {d} m"
    assert np.mean(np.abs(dist - d) <= 1.0) >= 0.8
    # points at d - tolerance from the boundary, all round every vertex and along every edge, are inside
    inner = d - sag_tolerance(d) - 1.0
    ring = np.asarray(poly.exterior.coords)
    probes = np.vstack([ring_points_around(x, y, inner, count=36) for x, y in ring[:-1]])
    edge_probes = perpendicular_offsets([(float(x), float(y)) for x, y in straight_samples(ring, 0.02)], inner, 5e3)
    probes = np.vstack([probes, edge_probes])
    probes = probes[np.linspace(0, len(probes) - 1, min(probe_sample, len(probes))).astype(int)]
    probe_dist = boundary.many(probes)
    outside_true = probes[probe_dist <= inner + 1.0]  # keep those really within d - tolerance of the boundary
    missed = ~covered(buffered, outside_true)
    assert not missed.any(), f"{missed.sum()} points within {inner:.0f} m of the polygon are outside its buffer"
    return buffered


@pytest.mark.parametrize("d", [1_000.0, 10_000.0, 50_000.0])
def test_buffer_of_small_polygon(d: float) -> None:
    # the local (azimuthal equidistant) path
    check_buffer(SMALL_POLYGON, d, probe_sample=2000)


LARGE_SQUARE = shapely.Polygon([(36.0, 34.0), (39.5, 34.0), (39.5, 37.0), (36.0, 37.0)])
"""About 320 km x 330 km: large enough for the ribbon code path."""


def test_buffer_of_large_densified_polygon() -> None:
    # edges short enough (0.05 degree) that straight lon/lat edges and geodesics coincide within a metre
    poly = shapely.segmentize(LARGE_SQUARE, 0.05)
    check_buffer(poly, 10_000.0, vertex_sample=120, spacing_deg=0.001)


def test_buffer_of_large_polygon_follows_its_straight_edges() -> None:
    """A footprint's edges are straight in lon/lat; its buffer must follow them, not geodesics.

    Over a 3.5-degree east-west edge at 34-37 N the geodesic and the straight lon/lat edge are ~1.3 km
    apart, so a buffer that follows the geodesic between vertices misses points near the edge.
    """
    check_buffer(LARGE_SQUARE, 10_000.0, vertex_sample=120, spacing_deg=0.001)


@pytest.mark.parametrize("d", [1_000.0, 10_000.0, 50_000.0, 200_000.0])
@pytest.mark.parametrize(("lon", "lat"), [(39.0, 35.9), (39.24, 35.76), (10.0, 60.26), (-47.9, -15.8)])
def test_buffer_of_point_is_a_circle(lon: float, lat: float, d: float) -> None:
    buffered = geodesic_buffer(shapely.Point(lon, lat), d)
    coords = exterior(buffered)
    dist = dist_from(lon, lat, coords[:, 0], coords[:, 1])
    out = circumscribed_radius_m(d, lat, len(coords) - 1)  # a conservative circle (see assert_circle_on_radius)
    assert np.all(np.abs(dist - out) <= 1.0), f"{np.max(np.abs(dist - out)):.3f} m off"
    assert len(coords) >= 17


@pytest.mark.parametrize("d", [1_000.0, 10_000.0, 50_000.0, 200_000.0])
def test_buffer_of_point_chords_stay_within_documented_sag(d: float) -> None:
    """Buffer arcs obey the same tolerance as circles (10 m, or 0.1 % of the distance over 10 km)."""
    lon, lat = 39.0, 35.9
    coords = exterior(geodesic_buffer(shapely.Point(lon, lat), d))
    mid = (coords[:-1] + coords[1:]) / 2.0
    sag = d - float(dist_from(lon, lat, mid[:, 0], mid[:, 1]).min())
    assert sag <= sag_tolerance(d) + 1.0, (
        f"buffer of a point by {d} m is a {len(coords) - 1}-gon whose edges sag {sag:.1f} m, "
        f"tolerance {sag_tolerance(d)} m"
    )


def test_buffer_by_zero_is_identity() -> None:
    assert geodesic_buffer(SMALL_POLYGON, 0.0).equals(SMALL_POLYGON)


# ------------------------------------------------------------------------------------------ 6. distance


def circle_pair(lat: float, r1: float, r2: float, gap_centres: float, az: float) -> tuple[shapely.Polygon, ...]:
    lon = 38.0
    lon2, lat2, _ = GEOD.fwd(lon, lat, az, gap_centres)
    return geodesic_circle(lon, lat, r1), geodesic_circle(float(lon2), float(lat2), r2)


def expected_gap_bounds(r1: float, r2: float, centres: float) -> tuple[float, float]:
    # conservative circles are larger than the true ones by up to 1.1 x the sag tolerance each, never smaller:
    # the gap between them is the true gap less at most that excess, never more
    gap = centres - r1 - r2
    excess = sum(1.1 * sag_tolerance(r) + 0.01 for r in (r1, r2))
    return gap - 1e-3 * gap - excess, gap + 1e-3 * gap


@pytest.mark.parametrize(
    ("lat", "r1", "r2", "centres", "az"),
    [
        (35.9, 5_000.0, 5_000.0, 30_000.0, 90.0),
        (-50.0, 20_000.0, 1_000.0, 100_000.0, 37.0),
        (60.0, 50_000.0, 30_000.0, 600_000.0, 120.0),
        (0.0, 2_000.0, 3_000.0, 10_000.0, 0.0),
        (45.0, 10_000.0, 10_000.0, 1_500_000.0, 300.0),
    ],
)
def test_distance_between_circles(lat: float, r1: float, r2: float, centres: float, az: float) -> None:
    a, b = circle_pair(lat, r1, r2, centres, az)
    low, high = expected_gap_bounds(r1, r2, centres)
    got = geodesic_distance_m(a, b)
    assert low <= got <= high, (got, centres - r1 - r2)
    assert geodesic_distance_m(b, a) == pytest.approx(got, rel=1e-6)


@HYPO
@given(
    lat=st.floats(-75.0, 75.0),
    r1=st.floats(200.0, 50_000.0),
    r2=st.floats(200.0, 50_000.0),
    gap=st.floats(5_000.0, 800_000.0),
    az=st.floats(0.0, 360.0),
)
def test_distance_between_circles_any(lat: float, r1: float, r2: float, gap: float, az: float) -> None:
    a, b = circle_pair(lat, r1, r2, r1 + r2 + gap, az)
    low, high = expected_gap_bounds(r1, r2, r1 + r2 + gap)
    assert low <= geodesic_distance_m(a, b) <= high


@pytest.mark.parametrize("overlap", [100.0, 5_000.0, 15_000.0])
def test_distance_between_overlapping_circles_is_zero(overlap: float) -> None:
    a, b = circle_pair(35.0, 10_000.0, 8_000.0, 18_000.0 - overlap, 45.0)
    assert geodesic_distance_m(a, b) == 0.0
    assert geodesic_distance_m(a, a) == 0.0


# ---------------------------------------------------------------------------------------------- 7. area


@pytest.mark.parametrize("radius_m", [5_000.0, 50_000.0, 500_000.0])
@pytest.mark.parametrize("lat", [0.0, 45.0, -70.0])
def test_circle_area_is_pi_r_squared(radius_m: float, lat: float) -> None:
    area = geodesic_area_m2(geodesic_circle(12.0, lat, radius_m))
    assert area == pytest.approx(math.pi * radius_m**2, rel=5e-3)


@pytest.mark.parametrize("radius_m", [100.0, 1_000.0, 5_000.0, 50_000.0])
def test_circle_area_is_that_of_its_inscribed_polygon(radius_m: float) -> None:
    """The area function itself: a regular n-gon inscribed in a circle of radius r has n r^2 sin(2 pi/n) / 2 (the
    stored circle's n-gon is inscribed in its circumscribed radius, the true circle inscribed in the n-gon)."""
    shape = geodesic_circle(12.0, 30.0, radius_m)
    n = len(shape.exterior.coords) - 1
    out = circumscribed_radius_m(radius_m, 30.0, n)
    expected = n * out**2 * math.sin(2 * math.pi / n) / 2
    assert expected > math.pi * radius_m**2
    assert geodesic_area_m2(shape) == pytest.approx(expected, rel=1e-3)


def test_area_of_a_known_cell_and_empty() -> None:
    # one degree x one degree at the equator, with geodesic edges: Geod's own figure
    cell = shapely.Polygon([(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)])
    area, _ = GEOD.polygon_area_perimeter([0.0, 1.0, 1.0, 0.0], [0.0, 0.0, 1.0, 1.0])
    assert geodesic_area_m2(cell) == pytest.approx(abs(area), rel=1e-9)
    assert 1.22e10 < geodesic_area_m2(cell) < 1.24e10
    # orientation does not matter
    assert geodesic_area_m2(cell.reverse()) == pytest.approx(geodesic_area_m2(cell))
    assert geodesic_area_m2(shapely.Polygon()) == 0.0


# ---------------------------------------------------------------------------------------- 8. offset_point


@HYPO
@given(
    lon=st.floats(-180.0, 180.0),
    lat=st.floats(-85.0, 85.0),
    az=st.floats(-180.0, 180.0),
    d=st.floats(0.0, 2_000_000.0),
)
def test_offset_point_round_trip(lon: float, lat: float, az: float, d: float) -> None:
    lon2, lat2 = offset_point(lon, lat, az, d)
    az12, _, dist = GEOD.inv(lon, lat, lon2, lat2)
    assert abs(dist - d) <= 1e-3
    if d > 1.0:
        assume(abs(lat) < 84.9)  # azimuth is well defined away from the poles
        assert abs((az12 - az + 180.0) % 360.0 - 180.0) < 1e-6
    many = offset_points(np.array([[lon, lat], [lon, lat]]), az, d)
    assert np.allclose(many, [[lon2, lat2], [lon2, lat2]], rtol=0, atol=1e-9)


@pytest.mark.parametrize(("az", "d", "dlon", "dlat"), [(0.0, 111_000.0, 0.0, 1.0), (90.0, 111_000.0, 1.0, 0.0)])
def test_offset_point_direction(az: float, d: float, dlon: float, dlat: float) -> None:
    lon2, lat2 = offset_point(0.0, 0.0, az, d)
    assert lon2 == pytest.approx(dlon, abs=0.01)
    assert lat2 == pytest.approx(dlat, abs=0.01)
