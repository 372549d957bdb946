"""The vectorised 4D point-in-volume test of live tracks against the slow obvious one."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from forewarn.core.airspace import Airspace
from forewarn.core.model import OperationState
from forewarn.tracks.conformance import Tolerance, VolumeLayer
from tests.builders import circle, operation, square
from tests.conftest import T0
from tests.oracles import containing_brute_force


def _airspace() -> Airspace:
    air = Airspace()
    air.put(operation("sq", "a", [square(38.0, 35.0, 0.2), square(38.3, 35.0, 0.1, lower=0, upper=2000,
                                                                 start_h=2, end_h=4)]))
    air.put(operation("ci", "b", [circle(38.25, 35.1, 8000, lower=3000, upper=9000)]))
    air.put(operation("done", "c", [circle(38.1, 35.1, 8000)]).model_copy(update={"state": OperationState.COMPLETED}))
    return air


def test_layer_skips_operations_that_are_not_live() -> None:
    layer = VolumeLayer(_airspace())
    assert {r.operation_id for r in layer.refs} == {"sq", "ci"}
    assert len(layer) == 3


def test_inside_in_band_and_window_only() -> None:
    layer = VolumeLayer(_airspace())
    t_in = (T0.timestamp() + 1.5 * 3600)
    lon = np.array([38.1, 38.1, 38.1, 38.1, 37.0])
    lat = np.array([35.1, 35.1, 35.1, 35.1, 35.1])
    alt = np.array([2000.0, 6000.0, 2000.0, np.nan, 2000.0])
    t = np.array([t_in, t_in, T0.timestamp(), t_in, t_in])
    pos, vol = layer.containing(lon, lat, alt, t)
    pairs = {(int(p), layer.refs[v].operation_id) for p, v in zip(pos, vol, strict=True)}
    # in band and window; above the band; before the window; no altitude (judged in 2D); far away
    assert pairs == {(0, "sq"), (3, "sq")}


def test_tolerance_widens_every_dimension() -> None:
    air = _airspace()
    exact = VolumeLayer(air)
    loose = VolumeLayer(air, Tolerance(horizontal_m=2000.0, vertical_m=100.0, time_s=60.0))
    # 0.01 deg of longitude (about 910 m at 35 N) west of the square, 50 m above it, 30 s before it opens
    lon, lat = np.array([37.99]), np.array([35.1])
    alt, t = np.array([5050.0]), np.array([T0.timestamp() + 3600 - 30])
    assert len(exact.containing(lon, lat, alt, t)[0]) == 0
    _, vol = loose.containing(lon, lat, alt, t)
    assert [loose.refs[v].operation_id for v in vol] == ["sq"]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(37.7, 38.7), st.floats(34.8, 35.4), st.one_of(st.just(float("nan")),
                                                                             st.floats(-100, 10_000)),
                       st.floats(0, 5 * 3600)), min_size=1, max_size=40),
    st.sampled_from([0.0, 500.0, 5000.0]), st.sampled_from([0.0, 150.0]), st.sampled_from([0.0, 600.0]),
)
def test_vectorised_equals_brute_force(points: list[tuple[float, float, float, float]], h: float, v: float,
                                       t: float) -> None:
    layer = VolumeLayer(_airspace(), Tolerance(h, v, t))
    arr = np.array(points, dtype=float)
    lon, lat, alt, ts = arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3] + T0.timestamp()
    pos, vol = layer.containing(lon, lat, alt, ts)
    assert set(zip(pos.tolist(), vol.tolist(), strict=True)) == containing_brute_force(layer, lon, lat, alt, ts)
    assert list(pos) == sorted(pos)


def test_crossed_by_finds_segments_through_footprints() -> None:
    layer = VolumeLayer(_airspace())
    # west-east segment through both squares and the circle; a segment far south meets nothing
    seg, vol = layer.crossed_by(np.array([[37.5, 39.0], [37.5, 39.0]]), np.array([[35.05, 35.05], [30.0, 30.0]]))
    assert {(int(s), layer.refs[v].operation_id, layer.refs[v].volume_index) for s, v in zip(seg, vol, strict=True)} \
        == {(0, "sq", 0), (0, "sq", 1), (0, "ci", 0)}


def test_an_empty_agreement_book_binds_nobody() -> None:
    from forewarn.core.airspace import AgreementBook

    book = AgreementBook()
    assert book.binding("a", "b") == [] and book.minima("a", "b", "x", "y") is None
