"""Named regions for the daily report: a small built-in table of coarse lon/lat polygons (WGS84 degrees).

The seed reports counted "six strikes in Syria and 17 in Iraq"; the report counts activity the same way by
deriving a region from each volume's footprint. The polygons are **coarse**: a dozen vertices each, traced
by hand along the borders to within some 10-30 km, good enough to tell Raqqa from Mosul, never to settle
whether an activity near a border was on one side of it. They are not an authority on any boundary.

Rules: regions are tried in the order of :data:`REGIONS`; where two polygons overlap, the earlier one keeps
the overlap, so the pieces never overlap. A volume's *primary* region is the one holding the largest share of
its footprint's geodesic area (WGS84 ellipsoid, m^2); a footprint in none of them is in ``"other"``. A
corridor (a route) is counted where it arrives instead: the region of the last point of its path (a
cruise-missile corridor from the Caspian to Raqqa counts in Syria, not in Iran, which it mostly crosses);
:func:`regions_crossed` lists every region a footprint meets.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import shapely
from shapely.geometry.base import BaseGeometry

from forewarn.geo import geodesy
from forewarn.geo.volume import Volume4D

OTHER = "other"
"""The region of everything outside the named regions."""

# Shared border vertices (lon, lat), so that neighbouring regions meet without gaps or slivers.
_SYRIA_IRAQ = [(38.79, 33.37), (41.0, 34.42), (41.2, 35.1), (41.38, 35.8), (41.38, 36.5), (42.36, 37.11)]
_IRAQ_IRAN = [(44.79, 37.15), (45.4, 35.9), (46.2, 35.1), (45.45, 33.9), (46.1, 32.95), (47.7, 31.4),
              (48.0, 30.5), (48.55, 29.95)]

_TABLE: list[tuple[str, list[tuple[float, float]]]] = [
    ("Syria", [(35.9, 35.92), (36.4, 36.2), (36.6, 36.8), (37.5, 36.65), (38.2, 36.9), (39.2, 36.7), (40.8, 37.1),
               *reversed(_SYRIA_IRAQ), (35.9, 32.7), (35.8, 33.3), (35.95, 33.6), (36.6, 34.2), (36.45, 34.6),
               (35.87, 34.63)]),
    ("Iraq", [*_SYRIA_IRAQ, (43.3, 37.35), *_IRAQ_IRAN, (47.7, 30.1), (46.5, 29.1), (44.7, 29.2), (42.1, 31.1),
              (39.2, 32.15)]),
    ("Lebanon", [(35.1, 33.1), (35.8, 33.3), (35.95, 33.6), (36.6, 34.2), (36.45, 34.6), (35.87, 34.63),
                 (35.6, 34.2)]),
    ("Jordan", [(35.9, 32.7), (38.79, 33.37), (39.2, 32.15), (37.0, 31.5), (38.0, 30.5), (37.5, 30.0),
                (36.0, 29.2), (35.0, 29.4), (35.55, 31.5)]),
    ("Turkey", [(26.0, 36.0), (35.9, 35.92), (36.4, 36.2), (36.6, 36.8), (37.5, 36.65), (38.2, 36.9),
                (39.2, 36.7), (40.8, 37.1), (42.36, 37.11), (43.3, 37.35), (44.79, 37.15), (44.8, 39.7),
                (43.5, 41.1), (41.5, 41.5), (36.0, 42.1), (28.0, 42.0), (26.0, 40.5)]),
    ("Iran", [*reversed(_IRAQ_IRAN), (44.79, 37.15), (44.8, 39.7), (47.9, 39.3), (48.9, 38.4), (49.0, 37.6),
              (53.9, 37.3), (61.0, 36.6), (61.6, 31.4), (61.8, 25.0), (57.0, 25.5), (51.0, 27.8)]),
    ("Caspian Sea", [(49.0, 37.6), (53.9, 37.3), (54.0, 40.0), (53.0, 42.0), (51.3, 45.0), (53.0, 46.8),
                     (49.0, 46.5), (47.5, 45.5), (47.5, 43.0), (49.5, 40.5), (48.9, 38.4)]),
    ("Russia (North Caucasus)", [(36.6, 45.0), (40.0, 43.4), (42.5, 43.2), (44.8, 42.7), (46.5, 41.9),
                                 (48.4, 41.9), (47.5, 43.0), (47.5, 45.5), (47.0, 48.0), (36.6, 48.0)]),
    ("Eastern Mediterranean", [(26.0, 31.0), (34.2, 31.3), (35.1, 33.1), (35.6, 34.2), (35.87, 34.63),
                               (35.9, 35.92), (26.0, 36.0)]),
]


@dataclass(frozen=True)
class Region:
    """A named region: its polygon (lon/lat WGS84 degrees), already clipped by the regions before it."""

    name: str
    shape: BaseGeometry


@cache
def regions() -> tuple[Region, ...]:
    """The named regions in priority order, each without the parts of the regions listed before it."""
    out: list[Region] = []
    taken: BaseGeometry = shapely.Polygon()
    for name, ring in _TABLE:
        polygon = shapely.make_valid(shapely.Polygon(ring))
        piece = shapely.difference(polygon, taken)
        out.append(Region(name=name, shape=piece))
        taken = shapely.union(taken, polygon)
    return tuple(out)


def region_shares(footprint: BaseGeometry) -> dict[str, float]:
    """Share (0..1) of ``footprint``'s geodesic area in each named region it meets, plus ``"other"`` for the
    rest; shares of a footprint with area sum to 1. A footprint without area (a point) gets 1 for the region
    holding it."""
    total = geodesy.geodesic_area_m2(footprint)
    if total <= 0:
        for region in regions():
            if region.shape.intersects(footprint):
                return {region.name: 1.0}
        return {OTHER: 1.0}
    shares: dict[str, float] = {}
    for region in regions():
        if not region.shape.intersects(footprint):
            continue
        area = geodesy.geodesic_area_m2(shapely.intersection(region.shape, footprint))
        if area > 0:
            shares[region.name] = area / total
    rest = 1.0 - sum(shares.values())
    if rest > 1e-6:
        shares[OTHER] = rest
    return shares


def primary_region(footprint: BaseGeometry) -> str:
    """The region holding the largest share of ``footprint`` (ties to the earlier region, ``other`` last)."""
    shares = region_shares(footprint)
    order = {r.name: i for i, r in enumerate(regions())} | {OTHER: len(regions())}
    return min(shares, key=lambda name: (-shares[name], order[name]))


def regions_crossed(footprint: BaseGeometry) -> list[str]:
    """Every region ``footprint`` meets with some area, largest share first."""
    shares = region_shares(footprint)
    return sorted(shares, key=lambda name: -shares[name])


def volume_region(volume: Volume4D) -> str:
    """The region a volume is counted in: for a corridor, the region of its path's last point (where the
    route arrives); otherwise :func:`primary_region` of its footprint."""
    footprint = volume.footprint
    if footprint.kind == "corridor":
        return primary_region(shapely.Point(footprint.path[-1]))
    return primary_region(volume.shape)
