"""The situation as GeoJSON (RFC 7946: WGS84 lon/lat): volumes, protected sites, conflicts, site warnings.

This is the operator's view of the whole store; what each party may see of it is decided by the sharing
policy (a later layer). Conflicts are those of the latest notice of each operation whose two sides are
still at the versions involved; a conflict's ``resolution`` text lists the proposals for the side asked to
adjust.
"""

from __future__ import annotations

from typing import Any

import shapely
from shapely.geometry import mapping

from forewarn.model import Operation
from forewarn.sites import site_shape
from forewarn.store.repository import Repository


def _feature(geometry: Any, properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": properties}


def volume_features(op: Operation, party_name: str) -> list[dict[str, Any]]:
    """One Polygon/MultiPolygon feature per volume of ``op`` (footprint as built, lon/lat)."""
    out = []
    for i, v in enumerate(op.volumes):
        out.append(_feature(mapping(shapely.set_precision(v.shape, 1e-7)), {
            "kind": "volume", "operation_id": op.id, "version": op.version, "party_id": op.party_id,
            "party_name": party_name, "activity_class": op.activity_class, "state": op.state.value,
            "volume_index": i, "footprint_kind": v.footprint.kind, "lower_m": v.lower_m, "upper_m": v.upper_m,
            "start": v.start.isoformat(), "end": v.end.isoformat(),
        }))
    return out


def situation(repo: Repository, include_planned: bool = False) -> dict[str, Any]:
    """The current situation as a GeoJSON FeatureCollection (see module docstring)."""
    names = {p.id: p.name for p in repo.list_parties()}
    ops = [o for o in repo.list_operations() if include_planned or o.state.value != "planned"]
    current = {o.id: o.version for o in ops if o.state.value in ("notified", "active")}
    features: list[dict[str, Any]] = []
    for op in ops:
        features.extend(volume_features(op, names.get(op.party_id, op.party_id)))
    for site in repo.list_sites():
        features.append(_feature(mapping(site_shape(site)), {
            "kind": "protected_site", "site_id": site.id, "name": site.name, "category": site.category,
            "buffer_m": site.buffer_m, "registered_by": site.registered_by,
        }))
    latest: dict[str, Any] = {}
    for notice in repo.list_notices():
        latest[notice.operation_id] = notice
    seen: set[tuple[str, int, str, int]] = set()
    for notice in latest.values():
        outcome = notice.outcome
        proposals = {r.operation_id: "; ".join(o.description for o in r.options) or "none found within bounds"
                     for r in outcome.resolutions}
        for c in outcome.conflicts:
            if current.get(c.a.operation_id) != c.a.version or current.get(c.b.operation_id) != c.b.version:
                continue
            key = tuple(sorted([(c.a.operation_id, c.a.volume_index), (c.b.operation_id, c.b.volume_index)]))
            flat = (key[0][0], key[0][1], key[1][0], key[1][1])
            if flat in seen:
                continue
            seen.add(flat)
            features.append(_feature({"type": "Point", "coordinates": list(c.overlap.point)}, {
                "kind": "conflict", "conflict_id": f"{c.a.operation_id}/{c.a.volume_index}~"
                f"{c.b.operation_id}/{c.b.volume_index}",
                "operation_a": c.a.operation_id, "operation_b": c.b.operation_id, "party_a": c.a.party_id,
                "party_b": c.b.party_id, "volume_a": c.a.volume_index, "volume_b": c.b.volume_index,
                "overlap_area_km2": round(c.overlap.area_km2, 3),
                "altitude_overlap_m": c.overlap.altitude_overlap_m, "time_overlap_s": c.overlap.time_overlap_s,
                "min_separation_m": round(c.separation.horizontal_m, 1),
                "adjusting_operation": c.adjusting_operation,
                "resolution": proposals.get(c.adjusting_operation, ""),
            }))
        for w in outcome.site_warnings:
            if current.get(w.operation_id) != w.version:
                continue
            features.append(_feature({"type": "Point", "coordinates": list(w.point)}, {
                "kind": "site_warning", "site_id": w.site_id, "site_name": w.site_name,
                "operation_id": w.operation_id, "party_id": w.party_id, "distance_m": round(w.distance_m, 1),
            }))
    return {"type": "FeatureCollection", "features": features}
