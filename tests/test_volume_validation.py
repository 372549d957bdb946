"""Validation of footprints and 4D volumes: structural checks at model build, configurable limits in check_volume.

Every refusal is checked for its message: a user filing a volume must be told what is wrong with it.
"""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pyproj
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from forewarn.errors import InvalidInput
from forewarn.geo.geodesy import GeometryError
from forewarn.geo.volume import (
    CircleFootprint,
    CorridorFootprint,
    PolygonFootprint,
    Volume4D,
    VolumeLimits,
    check_volume,
)

GEOD = pyproj.Geod(ellps="WGS84")
HYPO = settings(deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow])
NOW = datetime(2015, 11, 17, 6, 0, tzinfo=UTC)
SQUARE = [[38.9, 35.9], [39.1, 35.9], [39.1, 36.1], [38.9, 36.1]]


def volume_data(footprint: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "footprint": footprint if footprint is not None else {"kind": "polygon", "coordinates": SQUARE},
        "lower_m": 1_000.0,
        "upper_m": 5_000.0,
        "start": NOW + timedelta(hours=1),
        "end": NOW + timedelta(hours=3),
    }
    data.update(fields)
    return data


def rejected(data: dict[str, Any], *fragments: str) -> ValidationError:
    """Volume4D refuses ``data`` with a ValidationError whose text carries every fragment."""
    with pytest.raises(ValidationError) as info:
        Volume4D.model_validate(data)
    text = str(info.value)
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in: {text}"
    return info.value


def polygon(coords: list[Any]) -> dict[str, Any]:
    return {"kind": "polygon", "coordinates": coords}


def circle(center: list[float], radius_m: float) -> dict[str, Any]:
    return {"kind": "circle", "center": center, "radius_m": radius_m}


def corridor(path: list[Any], half_width_m: float = 5_000.0) -> dict[str, Any]:
    return {"kind": "corridor", "path": path, "half_width_m": half_width_m}


def test_valid_volume_is_accepted() -> None:
    v = Volume4D.model_validate(volume_data())
    assert v.lower_m == 1_000.0
    assert v.upper_m == 5_000.0
    assert v.shape.is_valid
    assert v.footprint.vertex_count() == 4
    assert check_volume(v, VolumeLimits(), NOW).equals(v.shape)


# ------------------------------------------------------------------------------------------ polygons


@pytest.mark.parametrize(
    "coords",
    [
        [[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]],
        [[0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 0.0]],
        [[0.0, 0.0], [1.0, 1.0]],
        [[0.0, 0.0]],
    ],
)
def test_polygon_needs_three_distinct_vertices(coords: list[list[float]]) -> None:
    rejected(volume_data(polygon(coords)), "at least 3 distinct vertices")


def test_bow_tie_polygon_is_not_simple() -> None:
    err = rejected(volume_data(polygon([[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0]])), "not simple")
    assert "Self-intersection" in str(err)


def test_collinear_polygon_has_zero_area() -> None:
    rejected(volume_data(polygon([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])), "zero area")


def test_closing_vertex_is_optional() -> None:
    closed = Volume4D.model_validate(volume_data(polygon([*SQUARE, SQUARE[0]])))
    open_ = Volume4D.model_validate(volume_data(polygon(SQUARE)))
    assert closed.footprint == open_.footprint
    assert closed.footprint.vertex_count() == 4


# --------------------------------------------------------------------------------- non-finite numbers

BAD_NUMBERS = [math.nan, math.inf, -math.inf]


@pytest.mark.parametrize("bad", BAD_NUMBERS)
@pytest.mark.parametrize(
    "footprint",
    [
        lambda x: polygon([[38.9, 35.9], [x, 35.9], [39.1, 36.1]]),
        lambda x: polygon([[38.9, 35.9], [39.1, x], [39.1, 36.1]]),
        lambda x: circle([x, 35.9], 5_000.0),
        lambda x: circle([38.9, x], 5_000.0),
        lambda x: corridor([[38.9, 35.9], [x, 36.0]]),
    ],
    ids=["polygon-lon", "polygon-lat", "circle-lon", "circle-lat", "corridor-lon"],
)
def test_non_finite_coordinates_are_rejected(footprint: Any, bad: float) -> None:
    rejected(volume_data(footprint(bad)), "is not a finite number")


@pytest.mark.parametrize("bad", BAD_NUMBERS)
def test_non_finite_radius_and_half_width_are_rejected(bad: float) -> None:
    rejected(volume_data(circle([38.9, 35.9], bad)), "radius_m", "finite number")
    rejected(volume_data(corridor([[38.9, 35.9], [39.0, 36.0]], bad)), "half_width_m", "finite number")


@pytest.mark.parametrize("bad", BAD_NUMBERS)
@pytest.mark.parametrize("field", ["lower_m", "upper_m", "lower_ft", "upper_ft", "lower_fl", "upper_fl"])
def test_non_finite_altitudes_are_rejected(field: str, bad: float) -> None:
    data = volume_data()
    del data[f"{field.split('_')[0]}_m"]
    data[field] = bad
    rejected(data, field, "finite number")  # the field as given (feet, flight level or metres)


# ---------------------------------------------------------------------------------- coordinate ranges


@pytest.mark.parametrize(
    ("point", "message"),
    [
        ([181.0, 10.0], "longitude 181.0 is outside [-180, 180]"),
        ([-180.5, 10.0], "longitude -180.5 is outside [-180, 180]"),
        ([10.0, -91.0], "latitude -91.0 is outside [-90, 90]"),
        ([10.0, 90.5], "latitude 90.5 is outside [-90, 90]"),
    ],
)
def test_out_of_range_coordinates_are_rejected(point: list[float], message: str) -> None:
    rejected(volume_data(polygon([[10.0, 10.0], [10.5, 10.0], point])), message)
    rejected(volume_data(circle(point, 1_000.0)), message)
    rejected(volume_data(corridor([[10.0, 10.0], point])), message)


# ------------------------------------------------------------------------------ radius and half-width


@pytest.mark.parametrize("bad", [0.0, -1.0, -5_000.0])
def test_non_positive_radius_and_half_width_are_rejected(bad: float) -> None:
    rejected(volume_data(circle([38.9, 35.9], bad)), "radius_m", "greater than 0")
    rejected(volume_data(corridor([[38.9, 35.9], [39.0, 36.0]], bad)), "half_width_m", "greater than 0")


@pytest.mark.parametrize("path", [[[38.9, 35.9]], [[38.9, 35.9], [38.9, 35.9]], [[38.9, 35.9]] * 5])
def test_corridor_needs_two_distinct_points(path: list[list[float]]) -> None:
    rejected(volume_data(corridor(path)), "at least 2 distinct points")


def test_corridor_with_repeated_points_is_accepted() -> None:
    v = Volume4D.model_validate(volume_data(corridor([[38.9, 35.9], [38.9, 35.9], [39.0, 36.0]])))
    assert v.shape.is_valid
    assert v.footprint.vertex_count() == 3


def test_unknown_footprint_kind_and_extra_fields_are_rejected() -> None:
    rejected(volume_data({"kind": "sphere", "center": [38.9, 35.9], "radius_m": 1.0}), "sphere")
    rejected(volume_data(target="anything"), "target", "Extra inputs are not permitted")
    rejected(volume_data(circle([38.9, 35.9], 1_000.0) | {"purpose": "x"}), "purpose", "Extra inputs")


# ------------------------------------------------------------------------------------ altitude band


@pytest.mark.parametrize(("lower", "upper"), [(5_000.0, 5_000.0), (6_000.0, 5_000.0)])
def test_lower_altitude_must_be_below_upper(lower: float, upper: float) -> None:
    rejected(volume_data(lower_m=lower, upper_m=upper), f"lower altitude {lower} m must be below upper altitude")


@pytest.mark.parametrize(("field", "value"), [("lower_m", -501.0), ("upper_m", 100_001.0)])
def test_altitudes_out_of_range_are_rejected(field: str, value: float) -> None:
    rejected(volume_data(**{field: value}), field)


def test_feet_and_flight_levels_are_converted_exactly() -> None:
    data = volume_data()
    del data["lower_m"], data["upper_m"]
    v = Volume4D.model_validate(data | {"lower_ft": 1000, "upper_fl": 350})
    assert v.lower_m == 304.8
    assert v.upper_m == 10_668.0
    v = Volume4D.model_validate(data | {"lower_fl": 100, "upper_ft": 35_000})
    assert v.lower_m == 3_048.0
    assert v.upper_m == 10_668.0
    # the result is metres, whatever unit went in
    assert set(v.model_dump()) == {"footprint", "lower_m", "upper_m", "start", "end"}


@pytest.mark.parametrize("extra", [{"lower_ft": 1000.0}, {"lower_fl": 10.0}], ids=["m+ft", "m+fl"])
def test_altitude_given_twice_is_rejected(extra: dict[str, float]) -> None:
    rejected(volume_data(**extra), "give the lower altitude once, in one unit", "lower_m")


def test_altitude_in_feet_and_flight_level_is_rejected() -> None:
    data = volume_data()
    del data["upper_m"]
    rejected(data | {"upper_ft": 30_000.0, "upper_fl": 300.0}, "give the upper altitude once", "upper_ft", "upper_fl")


def test_altitude_band_in_feet_is_ordered_after_conversion() -> None:
    data = volume_data()
    del data["lower_m"], data["upper_m"]
    rejected(data | {"lower_fl": 350, "upper_ft": 30_000}, "must be below upper altitude")


# --------------------------------------------------------------------------------------- time window


def test_start_must_be_before_end() -> None:
    rejected(volume_data(end=NOW + timedelta(hours=1)), "must be before end")
    rejected(volume_data(start=NOW + timedelta(hours=4)), "must be before end")


@pytest.mark.parametrize("field", ["start", "end"])
def test_naive_datetimes_are_rejected(field: str) -> None:
    naive = datetime(2015, 11, 17, 8, 0)  # noqa: DTZ001 - deliberately naive
    rejected(volume_data(**{field: naive}), "timezone-aware", field)
    rejected(volume_data(**{field: "2015-11-17T08:00:00"}), "timezone-aware", field)


def test_times_with_an_offset_are_normalised_to_utc() -> None:
    plus3 = timezone(timedelta(hours=3))
    start = datetime(2015, 11, 17, 10, 0, tzinfo=plus3)
    v = Volume4D.model_validate(volume_data(start=start, end="2015-11-17T05:30:00-05:00"))
    assert v.start == start  # same instant
    assert v.start.utcoffset() == timedelta(0)
    assert v.start.tzinfo == UTC
    assert (v.start.hour, v.start.minute) == (7, 0)
    assert v.end == datetime(2015, 11, 17, 10, 30, tzinfo=UTC)
    assert v.end.tzinfo == UTC
    assert v.start_s == start.timestamp()


# ------------------------------------------------------------------------------------- check_volume


def circle_polygon(n: int, radius_m: float = 50_000.0, lon: float = 39.0, lat: float = 35.9) -> list[list[float]]:
    az = np.linspace(360.0, 0.0, n, endpoint=False)
    lons, lats, _ = GEOD.fwd(np.full(n, lon), np.full(n, lat), az, np.full(n, radius_m))
    return [[float(x), float(y)] for x, y in zip(lons, lats, strict=True)]


def test_vertex_cap() -> None:
    ok = Volume4D.model_validate(volume_data(polygon(circle_polygon(10_000))))
    assert ok.footprint.vertex_count() == 10_000
    assert check_volume(ok, VolumeLimits(), NOW).is_valid
    too_many = Volume4D.model_validate(volume_data(polygon(circle_polygon(10_001))))
    with pytest.raises(InvalidInput) as info:
        check_volume(too_many, VolumeLimits(), NOW, where="volumes[2]")
    err = info.value
    assert err.message == "volumes[2]: footprint has 10001 vertices, more than the limit of 10000"
    assert err.details == {"field": "volumes[2]", "vertices": 10_001, "limit": 10_000}
    assert err.as_dict()["code"] == "invalid_input"
    # configurable
    with pytest.raises(InvalidInput, match="more than the limit of 3"):
        check_volume(
            ok.model_copy(update={"footprint": PolygonFootprint(coordinates=SQUARE)}), VolumeLimits(max_vertices=3), NOW
        )


def test_area_cap_is_configurable() -> None:
    v = Volume4D.model_validate(volume_data())
    lons, lats = zip(*SQUARE, strict=True)
    area_m2, _ = GEOD.polygon_area_perimeter(lons, lats)
    area_km2 = abs(area_m2) / 1e6
    assert 390 < area_km2 < 410  # 0.2 x 0.2 degree near 36 N
    assert check_volume(v, VolumeLimits(max_area_km2=area_km2 * 1.001), NOW).is_valid
    with pytest.raises(InvalidInput) as info:
        check_volume(v, VolumeLimits(max_area_km2=area_km2 * 0.999), NOW)
    assert "footprint area" in info.value.message
    assert "exceeds the limit" in info.value.message
    assert info.value.details["field"] == "volume"
    assert info.value.details["area_km2"] == pytest.approx(area_km2, rel=1e-6)
    assert info.value.details["limit_km2"] == pytest.approx(area_km2 * 0.999)


@pytest.mark.parametrize(("radius_km", "accepted"), [(250.0, True), (300.0, False)])
def test_default_area_cap(radius_km: float, accepted: bool) -> None:
    # pi r^2: 196,350 km2 under the default 250,000 km2 cap; 282,743 km2 over it
    v = Volume4D.model_validate(volume_data(circle([39.0, 35.9], radius_km * 1_000.0)))
    if accepted:
        check_volume(v, VolumeLimits(), NOW)
    else:
        with pytest.raises(InvalidInput, match="exceeds the limit of 250,000 km2"):
            check_volume(v, VolumeLimits(), NOW)


@pytest.mark.parametrize(
    ("end", "accepted"),
    [
        (timedelta(days=29), True),
        (timedelta(days=30), True),
        (timedelta(days=30, seconds=1), False),
        (timedelta(days=45), False),
    ],
)
def test_planning_horizon(end: timedelta, accepted: bool) -> None:
    v = Volume4D.model_validate(volume_data(start=NOW + end - timedelta(hours=2), end=NOW + end))
    if accepted:
        check_volume(v, VolumeLimits(), NOW)
        return
    with pytest.raises(InvalidInput) as info:
        check_volume(v, VolumeLimits(), NOW, where="volumes[0]")
    assert info.value.message.startswith("volumes[0]: window ends")
    assert "beyond the planning horizon (30 days" in info.value.message
    assert info.value.details["field"] == "volumes[0]"
    assert info.value.details["horizon_end"] == (NOW + timedelta(days=30)).isoformat()


def test_planning_horizon_is_configurable() -> None:
    v = Volume4D.model_validate(volume_data(start=NOW + timedelta(days=3), end=NOW + timedelta(days=3, hours=1)))
    check_volume(v, VolumeLimits(), NOW)
    with pytest.raises(InvalidInput, match="planning horizon \\(2 days"):
        check_volume(v, VolumeLimits(planning_horizon=timedelta(days=2)), NOW)


def test_check_volume_needs_an_aware_now() -> None:
    v = Volume4D.model_validate(volume_data())
    with pytest.raises(ValueError, match="timezone-aware"):
        check_volume(v, VolumeLimits(), datetime(2015, 11, 17))  # noqa: DTZ001 - deliberately naive


@pytest.mark.parametrize(
    ("footprint", "fragment"),
    [
        (circle([179.9, 10.0], 50_000.0), "antimeridian"),
        (circle([-179.9, 10.0], 50_000.0), "antimeridian"),
        (polygon([[179.5, 10.0], [-179.5, 10.0], [-179.5, 11.0], [179.5, 11.0]]), "antimeridian"),
        (corridor([[179.5, 10.0], [-179.5, 10.0]]), "antimeridian"),
        (polygon([[10.0, 83.0], [12.0, 83.0], [11.0, 86.0]]), "polar limit of 85.0 degrees"),
        (circle([20.0, -84.0], 200_000.0), "polar limit"),
        (corridor([[20.0, 84.0], [20.0, 85.5]]), "polar limit"),
    ],
)
def test_unrepresentable_footprints_are_invalid_input(footprint: dict[str, Any], fragment: str) -> None:
    v = Volume4D.model_validate(volume_data(footprint))
    with pytest.raises(InvalidInput) as info:
        check_volume(v, VolumeLimits(), NOW, where="volumes[1]")
    assert isinstance(info.value.__cause__, GeometryError)
    assert fragment in info.value.message
    assert info.value.message.startswith("volumes[1]: ")
    assert info.value.details["field"] == "volumes[1]"
    assert info.value.as_dict()["code"] == "invalid_input"


def test_polar_limit_is_configurable() -> None:
    v = Volume4D.model_validate(volume_data(polygon([[10.0, 83.0], [12.0, 83.0], [11.0, 86.0]])))
    assert check_volume(v, VolumeLimits(polar_limit_deg=87.0), NOW).is_valid
    with pytest.raises(InvalidInput, match=r"polar limit of 84\.0"):
        check_volume(
            Volume4D.model_validate(volume_data(polygon([[10.0, 83.0], [12.0, 83.0], [11.0, 84.5]]))),
            VolumeLimits(polar_limit_deg=84.0),
            NOW,
        )


# ------------------------------------------------------------------------------ property: valid shapes


def assert_representable(shape: shapely.geometry.base.BaseGeometry) -> None:
    assert shape.geom_type == "Polygon", shape.geom_type
    assert shape.is_valid, shapely.is_valid_reason(shape)
    assert not shape.is_empty
    assert shape.area > 0
    minx, miny, maxx, maxy = shape.bounds
    assert -180.0 <= minx <= maxx <= 180.0
    assert -90.0 <= miny <= maxy <= 90.0


@st.composite
def star_polygons(draw: st.DrawFn) -> list[list[float]]:
    """Simple polygons: vertices in angular order around a centre, one per sector (gaps under 180 degrees)."""
    lon = draw(st.floats(-170.0, 170.0))
    lat = draw(st.floats(-75.0, 75.0))
    n = draw(st.integers(3, 40))
    size = draw(st.floats(0.01, 3.0))
    jitter = draw(st.lists(st.floats(0.0, 0.4), min_size=n, max_size=n))
    radii = draw(st.lists(st.floats(0.3, 1.0), min_size=n, max_size=n))
    out = []
    for k in range(n):
        theta = 2 * math.pi * (k + jitter[k]) / n
        out.append([lon + size * radii[k] * math.cos(theta), lat + size * radii[k] * math.sin(theta)])
    return out


@HYPO
@given(coords=star_polygons())
def test_random_polygons_give_valid_shapes(coords: list[list[float]]) -> None:
    v = Volume4D.model_validate(volume_data(polygon(coords)))
    assert_representable(v.shape)
    assert v.footprint.vertex_count() == len(coords)
    assert check_volume(v, VolumeLimits(max_area_km2=1e9), NOW).equals(v.shape)


@HYPO
@given(lon=st.floats(-175.0, 175.0), lat=st.floats(-80.0, 80.0), r=st.floats(10.0, 300_000.0))
def test_random_circles_give_valid_shapes(lon: float, lat: float, r: float) -> None:
    fp = CircleFootprint(center=(lon, lat), radius_m=r)
    try:
        shape = fp.shape()
    except GeometryError as exc:
        # only near the antimeridian or the polar limit, and then said so
        az = np.linspace(0.0, 360.0, 3600, endpoint=False)
        lons, lats, _ = GEOD.fwd(np.full(3600, lon), np.full(3600, lat), az, np.full(3600, r))
        rel = (lons - lon + 180.0) % 360.0 - 180.0
        crosses = bool(np.any(np.abs(lon + rel) > 179.99))
        polar = bool(np.abs(lats).max() > 84.99)
        assert crosses or polar, f"circle {lon}, {lat}, {r} refused: {exc}"
        assert ("antimeridian" in str(exc)) or ("polar limit" in str(exc))
        return
    assert_representable(shape)


@st.composite
def corridor_paths(draw: st.DrawFn) -> list[list[float]]:
    lon = draw(st.floats(-160.0, 160.0))
    lat = draw(st.floats(-70.0, 70.0))
    path = [[lon, lat]]
    for _ in range(draw(st.integers(1, 6))):
        az = draw(st.floats(0.0, 360.0))
        d = draw(st.floats(500.0, 200_000.0))
        x, y, _ = GEOD.fwd(path[-1][0], path[-1][1], az, d)
        path.append([float(x), float(y)])
    return path


@HYPO
@given(path=corridor_paths(), w=st.floats(50.0, 30_000.0))
def test_random_corridors_give_valid_shapes(path: list[list[float]], w: float) -> None:
    v = Volume4D.model_validate(volume_data(corridor(path, w)))
    shape = v.shape
    assert_representable(shape)
    # the path itself (geodesic segments, sampled every 1 km) is inside its corridor
    for (lon1, lat1), (lon2, lat2) in itertools.pairwise(path):
        n = int(GEOD.inv(lon1, lat1, lon2, lat2)[2] // 1_000.0)
        inner = GEOD.npts(lon1, lat1, lon2, lat2, n) if n > 0 else []
        pts = np.array([(lon1, lat1), *inner, (lon2, lat2)])
        assert shapely.covers(shape, shapely.points(pts)).all()
    assert isinstance(v.footprint, CorridorFootprint)
    assert check_volume(v, VolumeLimits(), NOW).equals(shape)


def test_a_time_before_the_first_utc_instant_is_invalid_input_not_a_crash() -> None:
    import pydantic

    from forewarn.geo.volume import Volume4D

    with pytest.raises(pydantic.ValidationError, match="out of range"):
        Volume4D.model_validate({"footprint": {"kind": "circle", "center": [38.0, 35.0], "radius_m": 1000},
                                 "lower_m": 0, "upper_m": 1000, "start": "0001-01-01T00:00+01:00",
                                 "end": "2015-11-17T00:00Z"})
