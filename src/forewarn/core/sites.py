"""Protected sites: warnings when strike-class volumes come within a site's buffer.

A site registered by a (humanitarian) party applies to the notices of every party bound to the registering
party by an agreement. A warning goes to the notifying party and to the registering party. Sites are
permanent: the check is spatial only (any altitude, any time).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import shapely
from pydantic import BaseModel, ConfigDict
from shapely.geometry.base import BaseGeometry

from forewarn.core.airspace import AgreementBook
from forewarn.core.model import STRIKE_CLASSES, Operation, ProtectedSite
from forewarn.core.text import STORED
from forewarn.errors import InvalidInput
from forewarn.geo import geodesy
from forewarn.geo.volume import VolumeLimits


class SiteWarning(BaseModel):
    """A strike-class volume within a protected site's buffer; ``distance_m`` is geodesic (0 = inside)."""

    model_config = ConfigDict(frozen=True)

    site_id: str
    site_name: str
    category: str
    registered_by: str
    operation_id: str
    version: int
    volume_index: int
    party_id: str
    distance_m: float
    buffer_m: float
    point: tuple[float, float]


def site_shape(site: ProtectedSite) -> BaseGeometry:
    """The site itself (point or polygon, lon/lat WGS84)."""
    return _site_shape(site.model_dump_json())


@lru_cache(maxsize=4096)
def _site_shape(doc: str) -> BaseGeometry:
    site = ProtectedSite.model_validate_json(doc, context=STORED)
    if site.point is not None:
        return shapely.Point(site.point)
    assert site.polygon is not None
    return shapely.Polygon(site.polygon)


def site_zone(site: ProtectedSite) -> BaseGeometry:
    """The site with its buffer, geodesic, as a lon/lat polygon (prepared for repeated tests). Computed once per
    version of the site (cached on its JSON document), not once per filing."""
    return _site_zone(site.model_dump_json())


@lru_cache(maxsize=1024)
def _site_zone(doc: str) -> BaseGeometry:
    site = ProtectedSite.model_validate_json(doc)
    shape = _site_shape(doc)
    zone = shape if site.buffer_m <= 0 else geodesy.geodesic_buffer(shape, site.buffer_m)
    shapely.prepare(zone)
    return zone


def check_site(site: ProtectedSite, limits: VolumeLimits, where: str = "site") -> None:
    """The volume limits a footprint must respect, applied to a site: at most ``limits.max_vertices`` vertices and
    at most ``limits.max_area_km2`` of geodesic area (the site itself; its buffer is at most 100 km by the
    model), within ``limits.polar_limit_deg`` of latitude. Raises :class:`~forewarn.errors.InvalidInput`."""
    count = 1 if site.polygon is None else len(site.polygon)
    if count > limits.max_vertices:
        raise InvalidInput(f"{where}: polygon has {count} vertices, more than the limit of {limits.max_vertices}",
                           {"field": f"{where}.polygon", "vertices": count, "limit": limits.max_vertices})
    shape = site_shape(site)
    _, miny, _, maxy = shape.bounds
    if max(abs(miny), abs(maxy)) > limits.polar_limit_deg:
        raise InvalidInput(f"{where}: reaches beyond {limits.polar_limit_deg} degrees of latitude",
                           {"field": where, "polar_limit_deg": limits.polar_limit_deg})
    area_km2 = geodesy.geodesic_area_m2(shape) / 1e6 if site.polygon is not None else 0.0
    if area_km2 > limits.max_area_km2:
        raise InvalidInput(
            f"{where}: area {area_km2:,.0f} km2 exceeds the limit of {limits.max_area_km2:,.0f} km2",
            {"field": f"{where}.polygon", "area_km2": area_km2, "limit_km2": limits.max_area_km2})


def site_warnings(op: Operation, sites: Iterable[ProtectedSite], book: AgreementBook) -> list[SiteWarning]:
    """Warnings for every strike-class volume of ``op`` within the buffer of a site that applies to it."""
    if op.activity_class not in STRIKE_CLASSES:
        return []
    bound = book.bound_parties(op.party_id)
    out: list[SiteWarning] = []
    for site in sorted(sites, key=lambda s: s.id):
        if site.registered_by not in bound:
            continue
        zone = site_zone(site)
        shape = site_shape(site)
        for i, volume in enumerate(op.volumes):
            if not zone.intersects(volume.shape):
                continue
            point = shape.representative_point()
            out.append(SiteWarning(
                site_id=site.id, site_name=site.name, category=site.category, registered_by=site.registered_by,
                operation_id=op.id, version=op.version, volume_index=i, party_id=op.party_id,
                distance_m=geodesy.geodesic_distance_m(volume.shape, shape), buffer_m=site.buffer_m,
                point=(point.x, point.y),
            ))
    return out
