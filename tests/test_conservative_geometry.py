"""Conservative geometry (issue 15): the predicted-entry screen misses no sampled point of the geodesic path."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pyproj
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from forewarn.core.airspace import Airspace
from forewarn.geo.volume import Volume4D
from forewarn.tracks.conformance import VolumeLayer
from tests.builders import operation
from tests.conftest import T0

GEOD = pyproj.Geod(ellps="WGS84")


def _layer(circles: list[tuple[float, float, float]]) -> VolumeLayer:
    air = Airspace()
    volumes = [Volume4D.model_validate({
        "footprint": {"kind": "circle", "center": [x, y], "radius_m": r}, "lower_m": 0, "upper_m": 20_000,
        "start": T0, "end": T0 + timedelta(hours=1)}) for x, y, r in circles]
    air.put(operation("op", "a", volumes))
    return VolumeLayer(air)


@settings(max_examples=40, deadline=None)
@given(st.floats(0.0, 75.0), st.lists(st.tuples(st.floats(-3.0, 3.0), st.floats(-1.5, 1.5), st.floats(30.0, 3000.0)),
                                      min_size=1, max_size=20),
       st.lists(st.tuples(st.floats(-3.0, 3.0), st.floats(-1.5, 1.5), st.floats(0, 360), st.floats(50, 300)),
                min_size=1, max_size=10))
def test_crossed_by_misses_no_sampled_path_point(lat0: float, circles: list[tuple[float, float, float]],
                                                 tracks: list[tuple[float, float, float, float]]) -> None:
    """Screen the geodesic path sampled every 5 s over 300 s: every (path, volume) whose footprint contains a sample
    (brute force) is among the screen's pairs."""
    layer = _layer([(20.0 + x, lat0 + y, r) for x, y, r in circles])
    steps = np.arange(0.0, 300.0 + 1e-9, 5.0)
    n, s = len(tracks), len(steps)
    lon0 = np.repeat([20.0 + t[0] for t in tracks], s)
    lat = np.repeat([lat0 + t[1] for t in tracks], s)
    trk = np.repeat([t[2] for t in tracks], s)
    dist = np.repeat([t[3] for t in tracks], s) * np.tile(steps, n)
    lon_s, lat_s, _ = GEOD.fwd(lon0, lat, trk, dist)
    lon_s, lat_s = np.asarray(lon_s).reshape(n, s), np.asarray(lat_s).reshape(n, s)
    seg, vol = layer.crossed_by(lon_s, lat_s)
    screened = set(zip(seg.tolist(), vol.tolist(), strict=True))
    brute = {(k, v) for k in range(n) for v, shape in enumerate(layer.shapes)
             if shapely.contains_xy(shape, lon_s[k], lat_s[k]).any()
             or shapely.intersects_xy(shape, lon_s[k], lat_s[k]).any()}
    assert brute <= screened


@settings(max_examples=60, deadline=None)
@given(lon=st.floats(-170.0, 170.0), lat=st.floats(-80.0, 80.0), radius=st.floats(30.0, 300_000.0))
def test_a_circle_footprint_contains_the_true_circle_with_a_bounded_excess(lon: float, lat: float,
                                                                           radius: float) -> None:
    """Every point of the true geodesic circle (pyproj, every 0.1 degree of azimuth) lies inside the stored polygon,
    and no vertex lies further out than 1.1 x the chord tolerance (10 m, or 0.1 % of radii over 10 km)."""
    from forewarn.geo.geodesy import CHORD_TOLERANCE_M, geodesic_circle

    if abs(lat) + radius / 100_000.0 > 84.0:
        return  # beyond the polar limit: refused, tested elsewhere
    polygon = geodesic_circle(lon, lat, radius)
    az = np.arange(0.0, 360.0, 0.1)
    x, y, _ = GEOD.fwd(np.full(len(az), lon), np.full(len(az), lat), az, np.full(len(az), radius))
    inside = shapely.covers(polygon, shapely.points(np.column_stack([x, y])))
    assert inside.all(), f"{int((~inside).sum())} points of the true circle outside"
    ring = np.asarray(polygon.exterior.coords)
    _, _, dist = GEOD.inv(np.full(len(ring), lon), np.full(len(ring), lat), ring[:, 0], ring[:, 1])
    excess = float(np.max(dist)) - radius
    assert 0.0 < excess <= 1.1 * max(CHORD_TOLERANCE_M, radius * 1e-3)
