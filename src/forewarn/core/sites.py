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
from forewarn.geo import geodesy


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
    """The site with its buffer, geodesic, as a lon/lat polygon."""
    shape = site_shape(site)
    if site.buffer_m <= 0:
        return shape
    return geodesy.geodesic_buffer(shape, site.buffer_m)


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
