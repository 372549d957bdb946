"""The situation as GeoJSON (RFC 7946: WGS84 lon/lat): volumes, protected sites, conflicts, site warnings.

Without a ``viewer`` this is the operator's view of the whole store (the CLI on the database file). With a
``viewer`` party every feature goes through :mod:`forewarn.core.policy`: the operations it may see (another party's
volumes coarsened where an agreement says so, others' planned operations never), the protected sites of the
parties it is bound to, only the conflicts it is a side of (figures measured against the other side as
shown to it), proposals only for its own operations, and site warnings on its own operations or its own sites.
Conflicts and site warnings about an operation coarsened for the viewer are decided on the coarsened volumes
(:mod:`forewarn.core.disclosure`), never taken from the stored notice (decided on the exact ones).

Conflicts are those of the latest notice of each operation whose two sides are still at the versions
involved; a conflict's ``resolution`` text lists the proposals for the side asked to adjust.
"""

from __future__ import annotations

from typing import Any

import shapely
from shapely.geometry import mapping

from forewarn.core.airspace import AgreementBook, Airspace
from forewarn.core.conflicts import Conflict
from forewarn.core.disclosure import conflicts_told, is_coarsened, site_warnings_told
from forewarn.core.model import Operation, ProtectedSite
from forewarn.core.policy import (
    WITHHELD_PROPOSALS,
    can_see,
    envelope_volumes,
    lookup_in,
    view_conflict,
    view_resolutions,
    visible,
)
from forewarn.core.sites import SiteWarning, site_shape
from forewarn.geo.volume import Volume4D
from forewarn.store.repository import Repository


def _feature(geometry: Any, properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": properties}


def volume_features(op: Operation, party_name: str, volumes: list[Volume4D] | None = None,
                    coarsened: bool = False) -> list[dict[str, Any]]:
    """One Polygon/MultiPolygon feature per volume of ``op`` (footprint as built, lon/lat); ``volumes`` replaces
    ``op``'s own (the coarsened ones the policy shows, then ``coarsened`` is set)."""
    out = []
    for i, v in enumerate(op.volumes if volumes is None else volumes):
        properties = {
            "kind": "volume", "operation_id": op.id, "version": op.version, "party_id": op.party_id,
            "party_name": party_name, "activity_class": op.activity_class, "state": op.state.value,
            "volume_index": i, "footprint_kind": v.footprint.kind, "lower_m": v.lower_m, "upper_m": v.upper_m,
            "start": v.start.isoformat(), "end": v.end.isoformat(),
        }
        if coarsened:
            properties["coarsened"] = True
        out.append(_feature(mapping(shapely.set_precision(v.shape, 1e-7)), properties))
    return out


def situation(repo: Repository, include_planned: bool = False, viewer: str | None = None,
              book: AgreementBook | None = None) -> dict[str, Any]:
    """The current situation as a GeoJSON FeatureCollection, whole or as ``viewer`` may see it (see module
    docstring); ``book`` defaults to the stored agreements."""
    if viewer is not None and book is None:
        book = AgreementBook(repo.list_agreements())
    names = {p.id: p.name for p in repo.list_parties()}
    ops = [o for o in repo.list_operations() if include_planned or o.state.value != "planned"]
    current = {o.id: o.version for o in ops if o.state.value in ("notified", "active")}
    features: list[dict[str, Any]] = []
    for op in ops:
        name = names.get(op.party_id, op.party_id)
        if viewer is None or book is None:
            features.extend(volume_features(op, name))
        elif visible(viewer, op, book):
            shown = envelope_volumes(viewer, op, book)
            features.extend(volume_features(op, name, shown, coarsened=shown != list(op.volumes)))
    if viewer is not None and book is not None:
        _viewer_events(repo, viewer, book, {o.id: o for o in ops}, current, features)
        return {"type": "FeatureCollection", "features": features}
    features.extend(_site_features(repo.list_sites(), lambda owner: True))
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
            _add_conflict(features, seen, c, proposals)
        for w in outcome.site_warnings:
            if current.get(w.operation_id) != w.version:
                continue
            features.append(_site_warning_feature(w))
    return {"type": "FeatureCollection", "features": features}


def _add_conflict(features: list[dict[str, Any]], seen: set[tuple[str, int, str, int]], c: Conflict,
                  proposals: dict[str, str]) -> None:
    """Append conflict ``c`` as a Point feature at its overlap, once per pair of volumes (either order)."""
    key = tuple(sorted([(c.a.operation_id, c.a.volume_index), (c.b.operation_id, c.b.volume_index)]))
    flat = (key[0][0], key[0][1], key[1][0], key[1][1])
    if flat in seen:
        return
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


def _site_warning_feature(w: SiteWarning) -> dict[str, Any]:
    return _feature({"type": "Point", "coordinates": list(w.point)}, {
        "kind": "site_warning", "site_id": w.site_id, "site_name": w.site_name,
        "operation_id": w.operation_id, "party_id": w.party_id, "distance_m": round(w.distance_m, 1),
    })


def _site_features(sites: list[ProtectedSite], keep: Any) -> list[dict[str, Any]]:
    return [_feature(mapping(site_shape(site)), {
        "kind": "protected_site", "site_id": site.id, "name": site.name, "category": site.category,
        "buffer_m": site.buffer_m, "registered_by": site.registered_by,
    }) for site in sites if keep(site.registered_by)]


def _viewer_events(repo: Repository, viewer: str, book: AgreementBook, ops: dict[str, Operation],
                   current: dict[str, int], features: list[dict[str, Any]]) -> None:
    """Sites, conflicts and site warnings as ``viewer`` may see them (appended to ``features``). Those about an
    operation coarsened for ``viewer`` are decided on the coarsened volumes (:mod:`forewarn.core.disclosure`)."""
    sites = repo.list_sites()
    features.extend(_site_features(sites, lambda owner: can_see(viewer, owner, book)))
    latest: dict[str, Any] = {}
    for notice in repo.list_notices():
        latest[notice.operation_id] = notice
    lookup = lookup_in(ops.values(), None, repo.get_operation)
    coarse = {o.id for o in ops.values() if current.get(o.id) == o.version and visible(viewer, o, book)
              and is_coarsened(viewer, o, book)}
    seen: set[tuple[str, int, str, int]] = set()
    for notice in latest.values():
        outcome = notice.outcome
        live = [c for c in outcome.conflicts
                if current.get(c.a.operation_id) == c.a.version and current.get(c.b.operation_id) == c.b.version
                and not {c.a.operation_id, c.b.operation_id} & coarse]
        own = {r.operation_id: ops.get(r.operation_id) for r in outcome.resolutions
               if (o := ops.get(r.operation_id)) is not None and o.party_id == viewer}
        proposals = {r.operation_id: "; ".join(o.description for o in r.options) or "; ".join(r.not_found)
                     or "none found within bounds"
                     for r in view_resolutions(viewer, outcome.resolutions, own, live, book, outcome.at)}
        for found in live:
            c = view_conflict(viewer, found, lookup, book)
            if c is None:
                continue
            _add_conflict(features, seen, c, proposals)
        for w in outcome.site_warnings:
            op = ops.get(w.operation_id)
            if op is None or current.get(w.operation_id) != w.version or w.operation_id in coarse:
                continue
            if viewer not in (w.party_id, w.registered_by) or not visible(viewer, op, book):
                continue
            features.append(_site_warning_feature(w))
    _coarse_events(viewer, book, [ops[i] for i in sorted(coarse)],
                   [o for o in ops.values() if o.party_id == viewer and current.get(o.id) == o.version],
                   sites, features, seen)


def _coarse_events(viewer: str, book: AgreementBook, coarse: list[Operation], mine: list[Operation],
                   sites: list[ProtectedSite], features: list[dict[str, Any]],
                   seen: set[tuple[str, int, str, int]]) -> None:
    """The conflicts of the live operations ``coarse`` (coarsened for ``viewer``) with ``viewer``'s live operations
    ``mine``, and the warnings on ``viewer``'s sites, all decided on the coarsened volumes (proposals withheld:
    the live picture is not at hand here)."""
    picture = Airspace(book=book)
    for op in mine:
        picture.put(op)
    for op in coarse:
        for c in conflicts_told(viewer, op, picture, None):
            _add_conflict(features, seen, c, {c.adjusting_operation: WITHHELD_PROPOSALS})
        for w in site_warnings_told(viewer, op, sites, book):
            features.append(_site_warning_feature(w))
