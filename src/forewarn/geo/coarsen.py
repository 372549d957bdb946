"""Coarsening of safety envelopes: what another party is shown instead of the exact volumes.

Everything rounds **outward**, so the coarsened volume always contains the exact one:

* footprints (WGS84 longitude/latitude degrees, treated as planar lon/lat polygons as everywhere in
  Forewarn): :func:`convex_hull` (the hull's vertices are a subset of the footprint's), and
  :func:`snap_to_grid`: the union of the cells of a lon/lat grid of ``grid_arcmin`` arc-minutes whose interior
  the footprint meets, holes filled; every vertex of the result is a grid point;
* altitude bands (metres above the WGS84 ellipsoid): :func:`coarsen_band` floors the lower and ceils the
  upper altitude to multiples of ``step_ft`` feet (1 ft = 0.3048 m);
* time windows (UTC): :func:`coarsen_window` floors the start and ceils the end to multiples of ``step_s``
  seconds since the Unix epoch (900 s: quarter hours).

:func:`coarsen_volume` applies an agreement's :class:`~forewarn.core.model.Coarsening` to a :class:`Volume4D`; the
result has a polygon footprint (a circle or a corridor would give its exact centre or route away).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from forewarn.geo.volume import PolygonFootprint, Volume4D
from forewarn.units import FOOT_M

MAX_GRID_CELLS = 250_000
"""Most grid cells examined for one footprint; beyond this the grid is coarsened by a whole factor (so every
vertex still lies on the requested grid)."""

VOLUME_LOWER_LIMIT_M = -500.0
VOLUME_UPPER_LIMIT_M = 100_000.0


class CoarseningRule(Protocol):
    """What a coarsening sets (an agreement's ``Coarsening`` record has these attributes): the outward lon/lat
    grid in arc-minutes (or None), whether to take the convex hull, the altitude step in feet and the time step
    in seconds (0: exact)."""

    @property
    def grid_arcmin(self) -> float | None: ...
    @property
    def convex_hull(self) -> bool: ...
    @property
    def altitude_step_ft(self) -> float: ...
    @property
    def time_step_s(self) -> float: ...


@dataclass(frozen=True)
class _Rule:
    """A hashable copy of a :class:`CoarseningRule` (the cache key)."""

    grid_arcmin: float | None
    convex_hull: bool
    altitude_step_ft: float
    time_step_s: float


def convex_hull(shape: BaseGeometry) -> shapely.Polygon:
    """The convex hull of a lon/lat footprint (its vertices are vertices of ``shape``)."""
    hull = shape.convex_hull
    if not isinstance(hull, shapely.Polygon):
        raise ValueError("the convex hull of a footprint with zero area is not a polygon")
    return hull


def grid_step_deg(grid_arcmin: float) -> float:
    """The grid step in degrees."""
    return grid_arcmin / 60.0


def _grid_value(k: int, grid_arcmin: float) -> float:
    # k * arcmin / 60 (not k * step): exact for the grid lines at whole degrees (0, 85, 90, 180)
    return k * grid_arcmin / 60.0


def snap_to_grid(shape: BaseGeometry, grid_arcmin: float) -> shapely.Polygon:
    """``shape`` rounded outward to a lon/lat grid of ``grid_arcmin`` arc-minutes (see the module docstring).

    Clamped to [-180, 180] x [-90, 90] degrees; the result contains ``shape`` and all its vertices are grid
    points (multiples of ``grid_arcmin`` / 60 degrees, up to floating-point rounding of k * grid / 60)."""
    if grid_arcmin <= 0 or not math.isfinite(grid_arcmin):
        raise ValueError(f"grid_arcmin must be a positive number, got {grid_arcmin!r}")
    minx, miny, maxx, maxy = shape.bounds
    factor = 1
    while True:
        g = grid_arcmin * factor
        step = grid_step_deg(g)
        i0, i1 = math.floor(minx / step), math.ceil(maxx / step)
        j0, j1 = math.floor(miny / step), math.ceil(maxy / step)
        # floating-point guard: the grid lines must enclose the bounds
        while _grid_value(i0, g) > minx:
            i0 -= 1
        while _grid_value(i1, g) < maxx:
            i1 += 1
        while _grid_value(j0, g) > miny:
            j0 -= 1
        while _grid_value(j1, g) < maxy:
            j1 += 1
        if max(i1 - i0, 1) * max(j1 - j0, 1) <= MAX_GRID_CELLS:
            break
        factor *= 2
    xs = np.clip(np.array([_grid_value(i, g) for i in range(i0, i1 + 1)]), -180.0, 180.0)
    ys = np.clip(np.array([_grid_value(j, g) for j in range(j0, j1 + 1)]), -90.0, 90.0)
    prepared = shapely.Polygon(shape.exterior) if isinstance(shape, shapely.Polygon) else shape
    shapely.prepare(prepared)
    runs: list[BaseGeometry] = []
    for row in range(len(ys) - 1):
        lo, hi = ys[row], ys[row + 1]
        if hi <= lo:
            continue
        cells = shapely.box(xs[:-1], lo, xs[1:], hi)
        # cells whose interior meets the footprint (a cell it only touches along an edge adds nothing)
        hit = shapely.intersects(prepared, cells) & ~shapely.touches(prepared, cells)
        # merge consecutive hit cells of the row into one box each
        col = 0
        n = len(hit)
        while col < n:
            if not hit[col]:
                col += 1
                continue
            start = col
            while col < n and hit[col]:
                col += 1
            if xs[col] > xs[start]:
                runs.append(shapely.box(xs[start], lo, xs[col], hi))
    if not runs:
        raise ValueError("footprint meets no grid cell (empty or outside [-180, 180] x [-90, 90])")
    union = shapely.union_all(runs)
    if isinstance(union, shapely.MultiPolygon):
        # a connected footprint meets cells that share edges; parts only arise from several footprint parts
        union = _bridge(union)
    assert isinstance(union, shapely.Polygon)
    filled = shapely.Polygon(union.exterior)
    # drop collinear vertices along straight runs of cell edges (the rest are grid points)
    simplified = shapely.simplify(filled, 0.0, preserve_topology=True)
    return simplified if isinstance(simplified, shapely.Polygon) and simplified.is_valid else filled


def _bridge(parts: shapely.MultiPolygon) -> shapely.Polygon:
    """One polygon from several grid-aligned parts: the grid-aligned bounding box of them all (outward, on the
    grid: its corners are corners of the parts' cells)."""
    minx, miny, maxx, maxy = parts.bounds
    return shapely.box(minx, miny, maxx, maxy)


def coarsen_footprint(shape: BaseGeometry, coarsening: CoarseningRule) -> shapely.Polygon:
    """The footprint as the other side sees it: the convex hull (if asked), then the outward grid (if asked)."""
    out: BaseGeometry = shape
    if coarsening.convex_hull:
        out = convex_hull(out)
    if coarsening.grid_arcmin is not None:
        out = snap_to_grid(out, coarsening.grid_arcmin)
    if not isinstance(out, shapely.Polygon):
        raise ValueError("a footprint is a polygon")
    return out


def coarsen_band(lower_m: float, upper_m: float, step_ft: float) -> tuple[float, float]:
    """[lower, upper) metres rounded outward to multiples of ``step_ft`` feet, within [-500, 100000] m."""
    if step_ft <= 0:
        return lower_m, upper_m
    step_m = step_ft * FOOT_M
    lo = math.floor(lower_m / step_m) * step_m
    hi = math.ceil(upper_m / step_m) * step_m
    if lo > lower_m:  # floating-point guard
        lo -= step_m
    if hi < upper_m:
        hi += step_m
    return max(lo, min(VOLUME_LOWER_LIMIT_M, lower_m)), min(hi, max(VOLUME_UPPER_LIMIT_M, upper_m))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def coarsen_window(start: datetime, end: datetime, step_s: float) -> tuple[datetime, datetime]:
    """[start, end) UTC rounded outward to multiples of ``step_s`` seconds since the Unix epoch."""
    if step_s <= 0:
        return start, end
    step = timedelta(seconds=step_s)
    lo = _EPOCH + step * math.floor((start - _EPOCH) / step)
    hi = _EPOCH + step * math.ceil((end - _EPOCH) / step)
    if lo > start:
        lo -= step
    if hi < end:
        hi += step
    return lo, hi


def coarsen_volume(volume: Volume4D, coarsening: CoarseningRule) -> Volume4D:
    """``volume`` as coarsened by ``coarsening``: a polygon footprint (unless the footprint is left exact),
    band and window rounded outward. Contains ``volume`` in all four dimensions."""
    rule = _Rule(coarsening.grid_arcmin, coarsening.convex_hull, coarsening.altitude_step_ft, coarsening.time_step_s)
    return _coarsen_cached(volume.model_dump_json(), rule, volume)


def _coarsen(volume: Volume4D, coarsening: CoarseningRule) -> Volume4D:
    lower, upper = coarsen_band(volume.lower_m, volume.upper_m, coarsening.altitude_step_ft)
    start, end = coarsen_window(volume.start, volume.end, coarsening.time_step_s)
    if coarsening.grid_arcmin is None and not coarsening.convex_hull:
        return Volume4D(footprint=volume.footprint, lower_m=lower, upper_m=upper, start=start, end=end)
    shape = coarsen_footprint(volume.shape, coarsening)
    ring = [(float(x), float(y)) for x, y in shape.exterior.coords[:-1]]
    out = Volume4D(footprint=PolygonFootprint(coordinates=ring), lower_m=lower, upper_m=upper, start=start, end=end)
    out.__dict__["shape"] = shapely.Polygon(ring)  # may reach +/-90 deg: bypass the polar check of shape()
    return out


_CACHE: dict[tuple[str, _Rule], Volume4D] = {}


def _coarsen_cached(volume_key: str, rule: _Rule, volume: Volume4D) -> Volume4D:
    key = (volume_key, rule)
    hit = _CACHE.get(key)
    if hit is None:
        hit = _coarsen(volume, rule)
        if len(_CACHE) >= 4096:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = hit
    return hit
