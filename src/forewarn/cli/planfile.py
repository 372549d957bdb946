"""Plan files: an operation described as a GeoJSON FeatureCollection, one feature per volume.

Each feature's geometry gives the footprint (WGS84 lon/lat):

* ``Polygon`` -> polygon footprint (exterior ring; holes are rejected);
* ``Point`` with ``properties.radius_m`` -> circle;
* ``LineString`` with ``properties.half_width_m`` -> corridor.

Feature properties: ``lower_m``/``upper_m`` (metres above WGS84; or ``lower_ft``/``upper_ft``, or
``lower_fl``/``upper_fl``), ``start``/``end`` (ISO 8601 with a UTC offset). The collection may carry a
foreign member ``"operation": {"id": ..., "activity_class": ...}``; command-line options override it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from forewarn.core.model import Operation
from forewarn.errors import InvalidInput, validation_errors
from forewarn.geo.volume import Volume4D

_ALTITUDE_KEYS = ("lower_m", "upper_m", "lower_ft", "upper_ft", "lower_fl", "upper_fl")


def _footprint(geometry: Any, props: dict[str, Any], where: str) -> dict[str, Any]:
    if not isinstance(geometry, dict):
        raise InvalidInput(f"{where}: feature has no geometry")
    kind = geometry.get("type")
    coords = geometry.get("coordinates")
    if kind == "Polygon":
        if not isinstance(coords, list) or not coords:
            raise InvalidInput(f"{where}: Polygon without coordinates")
        if len(coords) > 1:
            raise InvalidInput(f"{where}: polygons with holes are not supported; give the exterior ring only")
        return {"kind": "polygon", "coordinates": coords[0]}
    if kind == "Point":
        if "radius_m" not in props:
            raise InvalidInput(f"{where}: a Point footprint needs properties.radius_m (metres)")
        return {"kind": "circle", "center": coords, "radius_m": props["radius_m"]}
    if kind == "LineString":
        if "half_width_m" not in props:
            raise InvalidInput(f"{where}: a LineString footprint needs properties.half_width_m (metres)")
        return {"kind": "corridor", "path": coords, "half_width_m": props["half_width_m"]}
    raise InvalidInput(f"{where}: geometry type {kind!r} is not a footprint (use Polygon, Point or LineString)")


def parse_plan(data: Any, *, party_id: str, operation_id: str | None = None,
               activity_class: str | None = None) -> Operation:
    """Turn a decoded plan document into an :class:`Operation` of ``party_id`` (validated, not stored)."""
    if not isinstance(data, dict) or data.get("type") not in ("FeatureCollection", "Feature"):
        raise InvalidInput("a plan is a GeoJSON FeatureCollection (or a single Feature)")
    features = data["features"] if data["type"] == "FeatureCollection" else [data]
    if not isinstance(features, list) or not features:
        raise InvalidInput("a plan needs at least one feature (one per volume)")
    raw_meta = data.get("operation")
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    volumes: list[Volume4D] = []
    for i, feature in enumerate(features):
        where = f"features[{i}]"
        if not isinstance(feature, dict):
            raise InvalidInput(f"{where}: not a GeoJSON Feature")
        props = feature.get("properties") or {}
        if not isinstance(props, dict):
            raise InvalidInput(f"{where}: properties must be an object")
        raw = {k: props[k] for k in _ALTITUDE_KEYS if k in props}
        raw.update(footprint=_footprint(feature.get("geometry"), props, where),
                   start=props.get("start"), end=props.get("end"))
        try:
            volumes.append(Volume4D.model_validate(raw))
        except ValidationError as exc:
            raise InvalidInput(f"{where}: invalid volume", {"errors": validation_errors(exc)}) from exc
    try:
        return Operation(
            id=operation_id or meta.get("id") or "what-if",
            party_id=party_id,
            activity_class=activity_class or meta.get("activity_class") or "transport",
            volumes=volumes,
        )
    except ValidationError as exc:
        raise InvalidInput("invalid operation", {"errors": validation_errors(exc)}) from exc


def read_plan(path: str | Path, **kwargs: Any) -> Operation:
    """Read and parse a plan file (see :func:`parse_plan` for the keyword arguments)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInput(f"cannot read plan {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path}: not valid JSON: {exc}") from exc
    return parse_plan(data, **kwargs)
