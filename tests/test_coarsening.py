"""Coarsening of safety envelopes: always contains the exact volume, reveals only what the setting allows.

Footprints are checked in planar lon/lat (WGS84 degrees), the frame every Forewarn footprint lives in;
altitudes in metres above WGS84 (steps in feet), times UTC (steps in seconds since the epoch).
"""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta

import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from shapely.geometry.base import BaseGeometry

from forewarn.core.model import Agreement, Coarsening, PlanningDetail
from forewarn.geo.coarsen import coarsen_band, coarsen_footprint, coarsen_volume, coarsen_window, snap_to_grid
from forewarn.geo.volume import Volume4D
from forewarn.service.scenario import builtin_scenario
from forewarn.units import FOOT_M

GRIDS = [0.5, 1.0, 2.0, 3.0, 5.0, 6.0, 10.0, 15.0, 30.0, 60.0]
T0 = datetime(2015, 11, 17, tzinfo=UTC)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def star_polygons(draw: st.DrawFn) -> dict[str, object]:
    """A simple polygon: vertices at strictly increasing angles around a centre, random radii (star-shaped)."""
    lon = draw(st.floats(-170, 170))
    lat = draw(st.floats(-70, 70))
    n = draw(st.integers(3, 14))
    scale = draw(st.floats(0.005, 1.5))
    cuts = sorted(set(draw(st.lists(st.floats(0, 1), min_size=n, max_size=n, unique=True))))
    if len(cuts) < 3:
        cuts = [0.0, 1 / 3, 2 / 3]
    radii = draw(st.lists(st.floats(0.2, 1.0), min_size=len(cuts), max_size=len(cuts)))
    coords = [[lon + scale * r * math.cos(2 * math.pi * a), lat + scale * r * math.sin(2 * math.pi * a)]
              for a, r in zip(cuts, radii, strict=True)]
    return {"kind": "polygon", "coordinates": coords}


@st.composite
def footprints(draw: st.DrawFn) -> dict[str, object]:
    kind = draw(st.sampled_from(["polygon", "circle", "corridor"]))
    if kind == "polygon":
        return draw(star_polygons())
    lon = draw(st.floats(-170, 170))
    lat = draw(st.floats(-70, 70))
    if kind == "circle":
        return {"kind": "circle", "center": [lon, lat], "radius_m": draw(st.floats(200, 150_000))}
    steps = draw(st.lists(st.tuples(st.floats(-0.8, 0.8), st.floats(-0.8, 0.8)), min_size=1, max_size=5))
    path = [[lon, lat]]
    for dx, dy in steps:
        path.append([path[-1][0] + dx, path[-1][1] + dy])
    return {"kind": "corridor", "path": path, "half_width_m": draw(st.floats(100, 30_000))}


def volume_of(footprint: dict[str, object], lower: float = 1000.0, upper: float = 5000.0,
              start: datetime = T0, end: datetime = T0 + timedelta(hours=2)) -> Volume4D | None:
    try:
        v = Volume4D.model_validate({"footprint": footprint, "lower_m": lower, "upper_m": upper, "start": start,
                                     "end": end})
        _ = v.shape
    except (ValidationError, ValueError):
        return None
    return v


def on_grid(value: float, grid_arcmin: float) -> bool:
    k = value * 60.0 / grid_arcmin
    return abs(k - round(k)) < 1e-6


def vertices(poly: BaseGeometry) -> list[tuple[float, float]]:
    assert isinstance(poly, shapely.Polygon)
    return [(x, y) for x, y in poly.exterior.coords[:-1]]


def brute_force_grid(shape: BaseGeometry, grid_arcmin: float) -> BaseGeometry:
    """The slow obvious answer: every cell of the grid around the shape tested one by one, holes filled."""
    step = grid_arcmin / 60.0
    minx, miny, maxx, maxy = shape.bounds
    cells = []
    for i in range(math.floor(minx / step) - 1, math.ceil(maxx / step) + 1):
        for j in range(math.floor(miny / step) - 1, math.ceil(maxy / step) + 1):
            cell = shapely.box(i * grid_arcmin / 60.0, j * grid_arcmin / 60.0, (i + 1) * grid_arcmin / 60.0,
                               (j + 1) * grid_arcmin / 60.0)
            if cell.intersects(shape) and not cell.touches(shape):
                cells.append(cell)
    union = shapely.union_all(cells)
    assert isinstance(union, shapely.Polygon)
    return shapely.Polygon(union.exterior)


@SETTINGS
@given(footprints(), st.sampled_from(GRIDS))
def test_grid_contains_exact_and_reveals_only_grid_points(fp: dict[str, object], grid: float) -> None:
    v = volume_of(fp)
    if v is None:
        return
    exact = v.shape
    coarse = snap_to_grid(exact, grid)
    assert coarse.is_valid and coarse.covers(exact)
    points = vertices(coarse)
    assert all(on_grid(x, grid) and on_grid(y, grid) for x, y in points), points
    # only grid points within the snapped box of the shape, and only axis-parallel edges: a rectilinear outline
    step = grid / 60.0
    minx, miny, maxx, maxy = exact.bounds
    cols = math.ceil(maxx / step) - math.floor(minx / step) + 1
    rows = math.ceil(maxy / step) - math.floor(miny / step) + 1
    assert len(set(points)) == len(points) <= (cols + 1) * (rows + 1)
    ring = [*points, points[0]]
    assert all(abs(a[0] - b[0]) < 1e-9 or abs(a[1] - b[1]) < 1e-9 for a, b in itertools.pairwise(ring))
    # not coarser than the grid: within one cell diagonal of the shape's hull
    assert exact.convex_hull.buffer(step * math.sqrt(2) * 1.0001).covers(coarse)
    # the same cells as testing every cell of the grid one by one
    slow = brute_force_grid(exact, grid)
    assert coarse.symmetric_difference(slow).area < 1e-9 * max(slow.area, 1e-12) + 1e-15


@SETTINGS
@given(footprints())
def test_convex_hull_contains_exact_and_keeps_only_its_vertices(fp: dict[str, object]) -> None:
    v = volume_of(fp)
    if v is None:
        return
    exact = v.shape
    hull = coarsen_footprint(exact, Coarsening(convex_hull=True))
    assert hull.covers(exact)
    exact_points = set(vertices(exact))
    assert set(vertices(hull)) <= exact_points and len(vertices(hull)) <= len(exact_points)
    # hull then grid: still on the grid and still containing
    both = coarsen_footprint(exact, Coarsening(convex_hull=True, grid_arcmin=5))
    assert both.covers(exact) and all(on_grid(x, 5) and on_grid(y, 5) for x, y in vertices(both))


@SETTINGS
@given(st.floats(-500, 99_000), st.floats(1, 20_000), st.sampled_from([100.0, 500.0, 1000.0, 5000.0]))
def test_band_rounded_outward_to_feet(lower: float, height: float, step_ft: float) -> None:
    upper = min(lower + height, 100_000.0)
    if upper <= lower:
        return
    lo, hi = coarsen_band(lower, upper, step_ft)
    step_m = step_ft * FOOT_M
    assert lo <= lower and hi >= upper
    assert lo > lower - step_m - 1e-6 and hi < upper + step_m + 1e-6
    for value in (lo, hi):
        clamped = value in (-500.0, 100_000.0)
        k = value / step_m
        assert clamped or abs(k - round(k)) < 1e-9, value


@SETTINGS
@given(st.integers(0, 10**9), st.integers(1, 86_400 * 3), st.sampled_from([60.0, 300.0, 900.0, 3600.0]))
def test_window_rounded_outward_to_steps(start_s: int, length_s: int, step_s: float) -> None:
    start = datetime.fromtimestamp(start_s, UTC) + timedelta(microseconds=start_s % 997)
    end = start + timedelta(seconds=length_s)
    lo, hi = coarsen_window(start, end, step_s)
    assert lo <= start and hi >= end
    assert (start - lo).total_seconds() < step_s and (hi - end).total_seconds() < step_s
    assert lo.timestamp() % step_s == 0 and hi.timestamp() % step_s == 0


@SETTINGS
@given(footprints(), st.sampled_from(GRIDS), st.sampled_from([0.0, 1000.0]), st.sampled_from([0.0, 900.0]))
def test_coarsened_volume_contains_exact_in_four_dimensions(fp: dict[str, object], grid: float, alt_ft: float,
                                                             time_s: float) -> None:
    v = volume_of(fp, lower=1234.5, upper=4321.0, start=T0 + timedelta(minutes=7, seconds=13),
                  end=T0 + timedelta(hours=2, minutes=41))
    if v is None:
        return
    c = coarsen_volume(v, Coarsening(grid_arcmin=grid, altitude_step_ft=alt_ft, time_step_s=time_s))
    assert c.footprint.kind == "polygon" and c.shape.covers(v.shape)
    assert c.lower_m <= v.lower_m and c.upper_m >= v.upper_m and c.start <= v.start and c.end >= v.end
    dumped = c.model_dump_json()
    assert "center" not in dumped and "path" not in dumped and "radius" not in dumped
    # round trip: what a viewer gets is a valid Volume4D again
    assert Volume4D.model_validate_json(dumped).footprint == c.footprint


def test_grid_is_exact_on_grid_lines_and_clamped_at_the_edges() -> None:
    square = shapely.box(39.0, 35.0, 39.5, 35.5)  # already on a 30' grid: unchanged (neighbours only touched)
    assert snap_to_grid(square, 30).equals(square)
    corner = shapely.Polygon([(39.0, 35.0), (39.5, 35.25), (39.25, 35.5)])  # vertex on a grid corner
    assert snap_to_grid(corner, 30).equals(square)
    inner = shapely.box(39.01, 35.01, 39.49, 35.49)
    assert snap_to_grid(inner, 30).equals(shapely.box(39.0, 35.0, 39.5, 35.5))
    edge = shapely.box(179.9, 84.9, 179.95, 84.95)
    assert snap_to_grid(edge, 60).equals(shapely.box(179.0, 84.0, 180.0, 85.0))


def test_coarsening_settings_are_validated() -> None:
    with pytest.raises(ValidationError, match="divide 300"):
        Coarsening(grid_arcmin=7)
    with pytest.raises(ValidationError, match="at least one"):
        Coarsening()
    with pytest.raises(ValidationError):
        Coarsening(grid_arcmin=5e-324)  # found by schemathesis: 300 / grid overflowed
    with pytest.raises(ValidationError):
        Coarsening(altitude_step_ft=-1)
    with pytest.raises(ValidationError, match="not parties"):
        Agreement(id="a", name="a", parties=["x", "y"], coarsening={"of": ["z"], "time_step_s": 900})
    with pytest.raises(ValidationError, match="not a planning-detail field"):
        Agreement(id="a", name="a", parties=["x", "y"], sharing="planning_detail", released_fields={"target": ["y"]})
    with pytest.raises(ValidationError, match="not parties"):
        Agreement(id="a", name="a", parties=["x", "y"], sharing="planning_detail", released_fields={"unit": ["z"]})
    with pytest.raises(ValidationError, match="needs sharing: planning_detail"):
        Agreement(id="a", name="a", parties=["x", "y"], released_fields={"unit": ["y"]})
    ok = Agreement.model_validate({"id": "a", "name": "a", "parties": ["x", "y"], "coarsening": {
        "of": ["x"], "grid_arcmin": 6, "convex_hull": True, "altitude_step_ft": 1000, "time_step_s": 900}})
    assert ok.coarsening is not None and ok.coarsening.applies_to("x") and not ok.coarsening.applies_to("y")
    merged = Coarsening(grid_arcmin=5).merged(Coarsening(grid_arcmin=10, altitude_step_ft=500, convex_hull=True))
    assert (merged.grid_arcmin, merged.altitude_step_ft, merged.convex_hull, merged.time_step_s) == (10, 500, True, 0)


def test_released_fields_name_the_planning_detail_fields_and_the_builtin_scenario_still_loads() -> None:
    from forewarn.core.model import PLANNING_DETAIL_FIELDS

    assert set(PLANNING_DETAIL_FIELDS) == set(PlanningDetail.model_fields)
    scenario = builtin_scenario("raqqa-2015")
    assert all(a.coarsening is None for a in scenario.agreements) and len(scenario.agreements) == 3


def test_huge_footprint_on_a_fine_grid_uses_a_whole_multiple_of_the_grid() -> None:
    v = volume_of({"kind": "circle", "center": [39.0, 35.0], "radius_m": 280_000})
    assert v is not None
    coarse = snap_to_grid(v.shape, 0.25)  # about 4.5 x 6 degrees: over a million cells of 0.25'
    assert coarse.covers(v.shape) and all(on_grid(x, 0.25) and on_grid(y, 0.25) for x, y in vertices(coarse))
    # the cell budget made it use 4 x 0.25' = 1' cells (a whole multiple: still on the 0.25' grid)
    assert all(on_grid(x, 1.0) and on_grid(y, 1.0) for x, y in vertices(coarse))
    assert coarse.area < v.shape.convex_hull.buffer(2 * 1.0 / 60).area
