"""Footprints and 4D volumes.

A :class:`Volume4D` is a footprint x an altitude band x a time window:

* footprint: a polygon (WGS84 lon/lat degrees, exterior ring only), a circle (centre lon/lat + radius in
  metres, geodesic) or a corridor (polyline lon/lat + half-width in metres, geodesic);
* altitude band ``[lower_m, upper_m)`` in metres above the WGS84 ellipsoid (helpers accept feet and flight
  levels, see :mod:`forewarn.units`);
* time window ``[start, end)``: timezone-aware datetimes, normalised to UTC; naive datetimes are rejected.

Structural validation (finite numbers, coordinate ranges, distinct vertices, self-intersection, ordered
bands and windows) runs whenever a model is built; limits that depend on configuration or on the current
time (vertex cap, area cap, planning horizon) are checked by :func:`check_volume`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Annotated, Any, Literal

import numpy as np
import shapely
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator, model_validator
from shapely.geometry.base import BaseGeometry

from forewarn.errors import InvalidInput
from forewarn.geo import geodesy
from forewarn.units import FOOT_M, fl_to_m

LonLat = Annotated[
    tuple[float, float],
    WithJsonSchema({"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2,
                    "description": "[longitude, latitude] in WGS84 degrees"}),
]
"""A position: (longitude, latitude) in WGS84 degrees, GeoJSON order."""


def check_lonlat(point: LonLat) -> LonLat:
    lon, lat = point
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise ValueError(f"coordinate {point!r} is not a finite number")
    if not -180.0 <= lon <= 180.0:
        raise ValueError(f"longitude {lon} is outside [-180, 180]")
    if not -90.0 <= lat <= 90.0:
        raise ValueError(f"latitude {lat} is outside [-90, 90]")
    return (float(lon), float(lat))


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PolygonFootprint(_Frozen):
    """A polygon given by its exterior ring of (lon, lat) WGS84 degrees; closing vertex optional."""

    kind: Literal["polygon"] = "polygon"
    coordinates: list[LonLat]

    @field_validator("coordinates")
    @classmethod
    def _valid_ring(cls, coords: list[LonLat]) -> list[LonLat]:
        coords = [check_lonlat(c) for c in coords]
        if len(coords) > 1 and coords[0] == coords[-1]:
            coords = coords[:-1]
        if len(set(coords)) < 3:
            raise ValueError("a polygon needs at least 3 distinct vertices")
        ring = shapely.Polygon(coords)
        if ring.convex_hull.area == 0:
            raise ValueError("polygon has zero area (its vertices are collinear)")
        if not ring.is_valid:
            reason = shapely.is_valid_reason(ring)
            raise ValueError(f"polygon is not simple ({reason})")
        return coords

    def shape(self, polar_limit_deg: float = 85.0) -> BaseGeometry:
        """The footprint as a lon/lat shapely polygon."""
        ring = np.asarray([*self.coordinates, self.coordinates[0]], dtype=float)
        geodesy.check_representable(ring, "polygon", polar_limit_deg)
        return shapely.Polygon(ring)

    def buffered(self, distance_m: float) -> BaseGeometry:
        """All points within ``distance_m`` metres (geodesic) of the polygon."""
        return geodesy.geodesic_buffer(self.shape(), distance_m)

    def vertex_count(self) -> int:
        return len(self.coordinates)


class CircleFootprint(_Frozen):
    """A geodesic circle: ``center`` (lon, lat) WGS84 degrees and ``radius_m`` in metres."""

    kind: Literal["circle"] = "circle"
    center: LonLat
    radius_m: float = Field(gt=0, le=2_000_000, allow_inf_nan=False)

    @field_validator("center")
    @classmethod
    def _valid_center(cls, center: LonLat) -> LonLat:
        return check_lonlat(center)

    def shape(self, polar_limit_deg: float = 85.0) -> BaseGeometry:
        return geodesy.geodesic_circle(self.center[0], self.center[1], self.radius_m, polar_limit_deg)

    def buffered(self, distance_m: float) -> BaseGeometry:
        """The circle of radius ``radius_m + distance_m`` (exact, geodesic)."""
        return geodesy.geodesic_circle(self.center[0], self.center[1], self.radius_m + distance_m)

    def vertex_count(self) -> int:
        return 1


class CorridorFootprint(_Frozen):
    """A route: polyline ``path`` of (lon, lat) WGS84 degrees with ``half_width_m`` metres either side."""

    kind: Literal["corridor"] = "corridor"
    path: list[LonLat]
    half_width_m: float = Field(gt=0, le=500_000, allow_inf_nan=False)

    @field_validator("path")
    @classmethod
    def _valid_path(cls, path: list[LonLat]) -> list[LonLat]:
        path = [check_lonlat(c) for c in path]
        if len(set(path)) < 2:
            raise ValueError("a corridor needs at least 2 distinct points")
        return path

    def shape(self, polar_limit_deg: float = 85.0) -> BaseGeometry:
        return geodesy.geodesic_corridor(self.path, self.half_width_m, polar_limit_deg)

    def buffered(self, distance_m: float) -> BaseGeometry:
        """The corridor of half-width ``half_width_m + distance_m`` (geodesic)."""
        return geodesy.geodesic_corridor(self.path, self.half_width_m + distance_m)

    def vertex_count(self) -> int:
        return len(self.path)


Footprint = Annotated[PolygonFootprint | CircleFootprint | CorridorFootprint, Field(discriminator="kind")]


def _altitude_from(data: dict[str, Any], name: str) -> None:
    """Accept ``{name}_ft`` or ``{name}_fl`` in place of ``{name}_m`` (converted to metres)."""
    key_m, key_ft, key_fl = f"{name}_m", f"{name}_ft", f"{name}_fl"
    given = [k for k in (key_m, key_ft, key_fl) if k in data]
    if len(given) > 1:
        raise ValueError(f"give the {name} altitude once, in one unit (got {', '.join(given)})")
    if key_ft in data:
        data[key_m] = _finite(data.pop(key_ft), key_ft) * FOOT_M
    elif key_fl in data:
        data[key_m] = fl_to_m(_finite(data.pop(key_fl), key_fl))


def _finite(value: Any, key: str) -> float:
    """``value`` as a finite number (feet or flight level), or a ValueError naming ``key`` (a validation error,
    never a crash: null, lists, objects, booleans and numeric strings are refused)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{key} must be a finite number, got {value!r}"[:200])
    return float(value)


class Volume4D(_Frozen):
    """Footprint x altitude band [lower_m, upper_m) metres above WGS84 x time window [start, end) UTC."""

    footprint: Footprint
    lower_m: float = Field(ge=-500.0, le=100_000.0, allow_inf_nan=False)
    upper_m: float = Field(ge=-500.0, le=100_000.0, allow_inf_nan=False)
    start: datetime
    end: datetime

    @model_validator(mode="before")
    @classmethod
    def _units(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            _altitude_from(data, "lower")
            _altitude_from(data, "upper")
        return data

    @field_validator("start", "end")
    @classmethod
    def _aware_utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("times must be timezone-aware (UTC); naive datetimes are rejected")
        try:
            return value.astimezone(UTC)
        except OverflowError as exc:  # e.g. 0001-01-01T00:00+01:00 is before the first representable UTC time
            raise ValueError(f"time {value.isoformat()} is out of range") from exc

    @model_validator(mode="after")
    def _ordered(self) -> Volume4D:
        if self.lower_m >= self.upper_m:
            raise ValueError(f"lower altitude {self.lower_m} m must be below upper altitude {self.upper_m} m")
        if self.start >= self.end:
            raise ValueError(f"start {self.start.isoformat()} must be before end {self.end.isoformat()}")
        return self

    @cached_property
    def shape(self) -> BaseGeometry:
        """The footprint as a lon/lat shapely polygon (cached)."""
        return self.footprint.shape()

    def buffered(self, distance_m: float) -> BaseGeometry:
        """The footprint grown by ``distance_m`` metres (geodesic), prepared for repeated predicates; cached per
        distance. ``distance_m <= 0`` gives the footprint itself."""
        if distance_m <= 1e-6:
            return self.shape
        cache: dict[float, BaseGeometry] = self.__dict__.setdefault("_buffers", {})
        hit = cache.get(distance_m)
        if hit is None:
            hit = self.footprint.buffered(distance_m)
            shapely.prepare(hit)
            cache[distance_m] = hit
        return hit

    @cached_property
    def start_s(self) -> float:
        """Start as seconds since the Unix epoch (UTC)."""
        return self.start.timestamp()

    @cached_property
    def end_s(self) -> float:
        """End as seconds since the Unix epoch (UTC)."""
        return self.end.timestamp()

    def shifted(self, seconds: float = 0.0, metres: float = 0.0) -> Volume4D:
        """This volume moved in time by ``seconds`` and in altitude by ``metres`` (the footprint, its shape and its
        cached buffers are shared; the cached epoch times are not)."""
        copy = self.model_copy(
            update={
                "start": self.start + timedelta(seconds=seconds),
                "end": self.end + timedelta(seconds=seconds),
                "lower_m": self.lower_m + metres,
                "upper_m": self.upper_m + metres,
            }
        )
        copy.__dict__.pop("start_s", None)
        copy.__dict__.pop("end_s", None)
        return copy

    def moved(self, azimuth_deg: float, distance_m: float) -> Volume4D:
        """This volume with its footprint moved ``distance_m`` metres along ``azimuth_deg`` (geodesic)."""
        fp = self.footprint
        moved: PolygonFootprint | CircleFootprint | CorridorFootprint
        if isinstance(fp, CircleFootprint):
            moved = fp.model_copy(update={"center": geodesy.offset_point(*fp.center, azimuth_deg, distance_m)})
        elif isinstance(fp, CorridorFootprint):
            pts = geodesy.offset_points(np.asarray(fp.path), azimuth_deg, distance_m)
            moved = fp.model_copy(update={"path": [(float(x), float(y)) for x, y in pts]})
        else:
            pts = geodesy.offset_points(np.asarray(fp.coordinates), azimuth_deg, distance_m)
            moved = fp.model_copy(update={"coordinates": [(float(x), float(y)) for x, y in pts]})
        # a fresh model: model_copy would carry the cached shape of the old footprint along
        return Volume4D(footprint=moved, lower_m=self.lower_m, upper_m=self.upper_m, start=self.start, end=self.end)


@dataclass(frozen=True)
class VolumeLimits:
    """Configurable limits every filed volume must respect.

    ``max_area_km2`` is the largest footprint area (geodesic, km^2); ``planning_horizon`` the furthest a
    window may end after ``now``; ``polar_limit_deg`` the highest |latitude| a footprint may reach.
    """

    max_vertices: int = 10_000
    max_area_km2: float = 250_000.0
    planning_horizon: timedelta = timedelta(days=30)
    polar_limit_deg: float = 85.0


def check_volume(volume: Volume4D, limits: VolumeLimits, now: datetime, where: str = "volume") -> BaseGeometry:
    """Check the configurable limits; return the footprint shape. Raises :class:`InvalidInput`."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    count = volume.footprint.vertex_count()
    if count > limits.max_vertices:
        raise InvalidInput(
            f"{where}: footprint has {count} vertices, more than the limit of {limits.max_vertices}",
            {"field": where, "vertices": count, "limit": limits.max_vertices},
        )
    try:
        shape = volume.footprint.shape(limits.polar_limit_deg)
    except geodesy.GeometryError as exc:
        raise InvalidInput(f"{where}: {exc}", {"field": where}) from exc
    volume.__dict__.setdefault("shape", shape)  # the same geometry Volume4D.shape would build: keep it
    area_km2 = geodesy.geodesic_area_m2(shape) / 1e6
    if area_km2 > limits.max_area_km2:
        raise InvalidInput(
            f"{where}: footprint area {area_km2:,.0f} km2 exceeds the limit of {limits.max_area_km2:,.0f} km2",
            {"field": where, "area_km2": area_km2, "limit_km2": limits.max_area_km2},
        )
    horizon_end = now + limits.planning_horizon
    if volume.end > horizon_end:
        raise InvalidInput(
            f"{where}: window ends {volume.end.isoformat()}, beyond the planning horizon "
            f"({limits.planning_horizon.days} days, i.e. {horizon_end.isoformat()})",
            {"field": where, "end": volume.end.isoformat(), "horizon_end": horizon_end.isoformat()},
        )
    return shape
