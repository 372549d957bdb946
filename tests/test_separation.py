"""The separation boundary (issue 15): one rule, ``gap < minimum - 1 cm``, in strategic detection, tactical prediction,
conformance and the ``endanger`` radius. Adjacent flight levels (exactly 1,000 ft apart) are separated; 999 ft is not.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from forewarn.core.airspace import AgreementBook, Airspace
from forewarn.core.conflicts import detect, volumes_conflict
from forewarn.core.model import Agreement, SeparationMinima
from forewarn.geo.volume import Volume4D
from forewarn.service.tracking import TrackSettings
from forewarn.tracks.conformance import Tolerance, VolumeLayer
from forewarn.tracks.cpa import DEFAULT_MINIMA, Model, TrackVectors, predict_conflicts
from forewarn.units import closer_than, fl_to_m
from tests.builders import operation
from tests.conftest import T0
from tests.oracles import predict_conflicts_brute

LEVELS = list(range(10, 600, 10))
"""FL010 ... FL590: each with the level 1,000 ft above it (up to FL600)."""

MINIMA = Agreement(id="x", name="x", parties=["a", "b"]).default_minima


def _band(lower_fl: float, upper_fl: float, lon: float = 38.0) -> Volume4D:
    return Volume4D.model_validate({
        "footprint": {"kind": "circle", "center": [lon, 35.0], "radius_m": 5000.0},
        "lower_fl": lower_fl, "upper_fl": upper_fl, "start": T0, "end": T0 + timedelta(hours=1),
    })


def test_default_minima_are_five_nm_and_exactly_1000_ft() -> None:
    assert MINIMA.horizontal_m == 9260.0
    assert MINIMA.vertical_m == 304.8  # not 305
    assert SeparationMinima.model_validate({"horizontal_nm": 5, "vertical_ft": 1000, "time_s": 0}) == \
        SeparationMinima(horizontal_m=9260.0, vertical_m=304.8, time_s=0)
    with pytest.raises(ValueError, match="not both"):
        SeparationMinima.model_validate({"vertical_m": 300, "vertical_ft": 1000, "time_s": 0})


def test_boundary_rule() -> None:
    assert not closer_than(304.8, 304.8)
    assert not closer_than(304.79999999999995, 304.8)
    assert not closer_than(304.795, 304.8)
    assert closer_than(304.789, 304.8)


@pytest.mark.parametrize("fl", LEVELS)
def test_strategic_adjacent_flight_levels_are_separated(fl: int) -> None:
    # co-located (same footprint, same window), stacked: A tops at FL fl, B starts 1,000 ft higher
    a, b = _band(fl - 10, fl), _band(fl + 10, fl + 20)
    assert not volumes_conflict(a, b, b.shape, MINIMA)
    assert not volumes_conflict(b, a, a.shape, MINIMA)
    close = _band(fl + 9.99, fl + 20)  # 999 ft above A's top
    assert volumes_conflict(a, close, close.shape, MINIMA)
    assert volumes_conflict(close, a, a.shape, MINIMA)


def test_compiled_detection_follows_the_boundary_rule() -> None:
    """The index-accelerated path (one compiled call per operation, forewarn.geo.kernels) decides time and
    altitude itself: adjacent flight levels, and windows exactly the minimum apart, are separated there too."""
    air = Airspace(book=AgreementBook([Agreement(id="ab", name="ab", parties=["a", "b"])]))
    for fl in LEVELS:
        air.put(operation(f"low-{fl}", "a", [_band(fl - 10, fl, lon=30.0 + fl / 20)]))
    air.put(operation("late", "a", [_band(100, 200, lon=20.0).shifted(seconds=3600 + 600)]))
    for fl in LEVELS:
        above = operation(f"high-{fl}", "b", [_band(fl + 10, fl + 20, lon=30.0 + fl / 20)])
        assert detect(above, air) == [], fl
        close = operation(f"close-{fl}", "b", [_band(fl + 9.99, fl + 20, lon=30.0 + fl / 20)])
        assert [c.b.operation_id for c in detect(close, air)] == [f"low-{fl}"], fl
    assert detect(operation("early", "b", [_band(100, 200, lon=20.0)]), air) == []
    assert len(detect(operation("early", "b", [_band(100, 200, lon=20.0).shifted(seconds=1)]), air)) == 1


def test_strategic_horizontal_and_time_boundaries() -> None:
    a = _band(100, 200)
    minima = SeparationMinima(horizontal_m=9260.0, vertical_m=304.8, time_s=600)
    later = a.shifted(seconds=3600 + 600)  # starts exactly 600 s after A ends
    assert not volumes_conflict(a, later, later.shape, minima)
    assert volumes_conflict(a, a.shifted(seconds=3600 + 599), a.shape, minima)


def _pair(fl: int, gap_ft: float, head_on: bool, reverse: bool) -> TrackVectors:
    """Two aircraft over the same point (co-located, hovering) or 20 km apart head-on at 250 m/s each, the second
    ``gap_ft`` above the first (FL fl)."""
    alts = [fl_to_m(fl), fl_to_m(fl) + gap_ft * 0.3048 if gap_ft != 1000 else fl_to_m(fl + 10)]
    lons = [38.0, 38.2] if head_on else [38.0, 38.0]
    gs = [250.0, 250.0] if head_on else [0.0, 0.0]
    trk = [90.0, 270.0]
    rows = list(zip(alts, lons, gs, trk, strict=True))
    if reverse:
        rows.reverse()
    return TrackVectors.from_arrays([35.0, 35.0], [r[1] for r in rows], [r[0] for r in rows], [r[2] for r in rows],
                                  [r[3] for r in rows], [0.0, 0.0], [0, 1])


@pytest.mark.parametrize("head_on", [False, True])
def test_tactical_adjacent_flight_levels_are_separated(head_on: bool) -> None:
    for fl in LEVELS:
        for reverse in (False, True):
            separated = _pair(fl, 1000, head_on, reverse)
            assert len(predict_conflicts(separated)) == 0, fl
            assert len(predict_conflicts_brute(separated)) == 0, fl
            close = _pair(fl, 999, head_on, reverse)
            assert predict_conflicts(close).pairs() == {(0, 1)}, fl
            assert predict_conflicts_brute(close).pairs() == {(0, 1)}, fl


@pytest.mark.parametrize("head_on", [False, True])
@pytest.mark.parametrize("gap_ft", [999.0, 1000.0, 1000.0 + 1e-4, 1001.0])
def test_bluesky_mode_does_not_depend_on_input_order(head_on: bool, gap_ft: float) -> None:
    model: Model = "bluesky"
    for fl in LEVELS:
        ab = predict_conflicts(_pair(fl, gap_ft, head_on, False), model=model)
        ba = predict_conflicts(_pair(fl, gap_ft, head_on, True), model=model)
        assert len(ab) == len(ba), (fl, gap_ft)
        assert len(predict_conflicts_brute(_pair(fl, gap_ft, head_on, True), model=model)) == len(ab)
        if gap_ft == 999.0:
            assert len(ab) == 1
        if gap_ft > 1000.0:
            assert len(ab) == 0


@pytest.mark.parametrize("lon", [180.5, -181.0, 360.0])
def test_longitude_outside_range_is_a_clear_error(lon: float) -> None:
    state = TrackVectors.from_arrays([35.0, 35.0], [lon, 38.0], [3000.0, 3000.0], [200.0, 200.0], [0.0, 0.0],
                                   [0.0, 0.0], [0, 1])
    for fn in (predict_conflicts, predict_conflicts_brute):
        with pytest.raises(ValueError, match=r"lon_deg must lie in \[-180, 180\]"):
            fn(state)


def _layer(tolerance: Tolerance) -> tuple[VolumeLayer, Volume4D]:
    air = Airspace()
    volume = _band(100, 200)
    air.put(operation("op", "a", [volume]))
    return VolumeLayer(air, tolerance), volume


def _near(layer: VolumeLayer, alt_m: float, lon: float = 38.0) -> bool:
    t = T0.timestamp() + 60
    pos, _ = layer.containing(np.array([lon]), np.array([35.0]), np.array([alt_m]), np.array([t]))
    return len(pos) == 1


@pytest.mark.parametrize("fl", [50, 100, 200, 350, 590])
def test_endanger_radius_follows_the_boundary_rule(fl: int) -> None:
    endanger = TrackSettings().endanger
    assert endanger.separation and endanger.vertical_m == 304.8 and endanger.horizontal_m == 9260.0
    air = Airspace()
    volume = _band(fl - 50, fl)
    air.put(operation("op", "a", [volume]))
    layer = VolumeLayer(air, endanger)
    t = T0.timestamp() + 60

    def near(alt: float) -> bool:
        return len(layer.containing(np.array([38.0]), np.array([35.0]), np.array([alt]), np.array([t]))[0]) == 1

    assert not near(fl_to_m(fl + 10))  # one flight level above the top: separated
    assert near(fl_to_m(fl) + 999 * 0.3048)
    assert not near(fl_to_m(fl - 60))  # one flight level below the bottom
    assert near(fl_to_m(fl - 50) - 999 * 0.3048)


def test_conformance_tolerance_is_an_allowance() -> None:
    layer, volume = _layer(Tolerance(vertical_m=30.0))
    assert _near(layer, volume.upper_m + 29.999)
    assert _near(layer, volume.lower_m - 30.0)
    assert not _near(layer, volume.upper_m + 30.02)


def test_default_tactical_minima_are_the_agreement_default() -> None:
    assert (DEFAULT_MINIMA.horizontal_m, DEFAULT_MINIMA.vertical_m) == (MINIMA.horizontal_m, MINIMA.vertical_m)


def test_bluesky_detectors_differ_where_documented() -> None:
    """docs/tracks.md: BlueSky's C++ detector misses the antimeridian and zero relative speed inside the minima;
    the NumPy one and Forewarn's bluesky mode find both."""
    pytest.importorskip("bluesky")
    import warnings
    from types import SimpleNamespace

    from bluesky.traffic.asas import cstatebased  # type: ignore[import-untyped]
    from bluesky.traffic.asas.statebased import StateBased  # type: ignore[import-untyped]

    def detectors(state: TrackVectors) -> tuple[int, int, int]:
        n = len(state)
        trk = np.radians(state.track_deg)
        own = SimpleNamespace(lat=state.lat_deg, lon=state.lon_deg, trk=state.track_deg, gs=state.gs_mps,
                              gseast=state.gs_mps * np.sin(trk), gsnorth=state.gs_mps * np.cos(trk),
                              alt=state.alt_m, vs=state.vs_mps, ntraf=n, id=list(range(n)))
        h, v = DEFAULT_MINIMA.horizontal_m, DEFAULT_MINIMA.vertical_m
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            numpy_pairs = StateBased.detect(None, own, own, h, v, 300.0)[0]
        cpp_pairs = cstatebased.detect(own, own, np.full(n, h), np.full(n, v), np.full(n, 300.0))[0]
        return len(numpy_pairs) // 2, len(cpp_pairs) // 2, len(predict_conflicts(state, model="bluesky"))

    across = TrackVectors.from_arrays([0.0, 0.0], [179.99, -179.99], [3000.0, 3000.0], [200.0, 200.0], [90.0, 270.0],
                                    [0.0, 0.0], [0, 1])
    formation = TrackVectors.from_arrays([35.0, 35.018], [38.0, 38.0], [3000.0, 3000.0], [200.0, 200.0], [0.0, 0.0],
                                       [0.0, 0.0], [0, 1])
    assert detectors(across) == (1, 0, 1)
    assert detectors(formation) == (1, 0, 1)
