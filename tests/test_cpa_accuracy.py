"""The geodesic CPA model's stated accuracy: on generated encounters (speeds up to 300 m/s, closest approach often
beyond the 300 s look-ahead so that it is taken at the horizon, latitudes up to 80 degrees) the CPA distance
reported is within :func:`geodesic_cpa_error_bound_m` of the true minimum distance of two aircraft flying WGS84
geodesics (pyproj), found by brute force: a 0.1 s sampling of the look-ahead refined to 0.1 ms around its minimum."""

from __future__ import annotations

import numpy as np
import pyproj
from hypothesis import given, settings
from hypothesis import strategies as st

from forewarn.tracks.cpa import Minima, TrackVectors, geodesic_cpa_error_bound_m, predict_conflicts

GEOD = pyproj.Geod(ellps="WGS84")
HORIZON_S = 300.0


def true_min_distance(start: list[tuple[float, float, float, float]], horizon_s: float) -> float:
    """Smallest surface distance (m) between two aircraft (lon, lat, course, speed) flying geodesics."""
    def distance(t: np.ndarray) -> np.ndarray:
        (alon, alat, acrs, av), (blon, blat, bcrs, bv) = start
        a = GEOD.fwd(np.full_like(t, alon), np.full_like(t, alat), np.full_like(t, acrs), av * t)
        b = GEOD.fwd(np.full_like(t, blon), np.full_like(t, blat), np.full_like(t, bcrs), bv * t)
        return np.asarray(GEOD.inv(a[0], a[1], b[0], b[1])[2])

    coarse = np.linspace(0.0, horizon_s, int(horizon_s * 10) + 1)
    k = int(np.argmin(distance(coarse)))
    fine = np.linspace(coarse[max(0, k - 1)], coarse[min(len(coarse) - 1, k + 1)], 2001)
    return float(distance(fine).min())


def test_the_bound_is_as_stated() -> None:
    assert 18.0 < geodesic_cpa_error_bound_m(300.0, 300.0) < 19.0
    assert 5.5 < geodesic_cpa_error_bound_m(200.0, 300.0) < 6.0


@settings(max_examples=150, deadline=None)
@given(lat=st.floats(-80.0, 80.0), lon=st.floats(-180.0, 180.0), t_meet=st.floats(20.0, 450.0),
       gs=st.tuples(st.floats(50.0, 300.0), st.floats(50.0, 300.0)),
       trk=st.tuples(st.floats(0.0, 360.0), st.floats(0.0, 360.0)), miss=st.floats(0.0, 9000.0),
       miss_az=st.floats(0.0, 360.0))
def test_geodesic_cpa_distance_is_within_the_stated_bound(lat: float, lon: float, t_meet: float,
                                                          gs: tuple[float, float], trk: tuple[float, float],
                                                          miss: float, miss_az: float) -> None:
    m_lon, m_lat, _ = GEOD.fwd(lon, lat, miss_az, miss)
    a_lon, a_lat, a_back = GEOD.fwd(lon, lat, trk[0] + 180.0, gs[0] * t_meet)
    b_lon, b_lat, b_back = GEOD.fwd(m_lon, m_lat, trk[1] + 180.0, gs[1] * t_meet)
    state = TrackVectors.from_arrays([a_lat, b_lat], [a_lon, b_lon], [5000, 5000], gs,
                                     [a_back % 360, b_back % 360], [0, 0])
    r = predict_conflicts(state, Minima(60_000.0, 300.0), lookahead_s=HORIZON_S)
    truth = true_min_distance([(a_lon, a_lat, a_back, gs[0]), (b_lon, b_lat, b_back, gs[1])], HORIZON_S)
    if truth < 59_000.0:  # well inside the minimum: the pair must be reported, with its CPA distance
        assert r.pairs() == {(0, 1)}
        assert abs(float(r.h_cpa_m[0]) - truth) <= geodesic_cpa_error_bound_m(max(gs), HORIZON_S)
