"""Footprints as packed arrays: the coordinates of many (multi)polygons in one lon/lat array with ring offsets.

A :class:`PackedShapes` holds ``n`` footprints (WGS84 lon/lat degrees): ``xy`` (m, 2) is every ring's
coordinates in order (each ring closed: its last vertex repeats its first), ``ring_sizes[r]`` the vertex count
of ring r, ``new_part[r]`` whether ring r is the exterior of a new polygon (else a hole of the previous one),
``rings_per_shape[k]`` how many rings footprint k has. :func:`unpack` gives back the shapely geometry with the
very same coordinates, so exact predicates on it answer as on the original.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry


@dataclass(frozen=True)
class PackedShapes:
    xy: NDArray[np.float64]
    ring_sizes: NDArray[np.int64]
    new_part: NDArray[np.bool_]
    rings_per_shape: NDArray[np.int64]


def pack(geoms: NDArray[np.object_] | list[BaseGeometry]) -> PackedShapes:
    """Pack polygons and multipolygons (vectorised; other geometry types raise ``ValueError``).

    Polygons without holes (every footprint Forewarn builds) take a fast path: one ``get_coordinates`` call over
    them gives their exterior rings directly; only the others are split into parts and rings. Same result as
    :func:`pack_slow` in ``tests/oracles_strategic.py`` (tested)."""
    arr = np.asarray(geoms, dtype=object)
    types = shapely.get_type_id(arr)
    if len(arr) and not np.all((types == 3) | (types == 6)):
        raise ValueError("only Polygon and MultiPolygon footprints can be packed")
    simple = (types == 3) & (shapely.get_num_interior_rings(arr) == 0)
    if simple.all():
        xy, coord_of = shapely.get_coordinates(arr, return_index=True)
        ring_sizes = np.bincount(coord_of, minlength=len(arr)).astype(np.int64)
        return PackedShapes(np.ascontiguousarray(xy, dtype=np.float64), ring_sizes, np.ones(len(arr), dtype=bool),
                            np.ones(len(arr), dtype=np.int64))
    # mixed: a simple polygon stands for its one ring; the others are expanded into their rings, in order
    complex_at = np.flatnonzero(~simple)
    parts, part_of = shapely.get_parts(arr[complex_at], return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    ring_shape = complex_at[part_of[ring_part]]
    new_part_c = np.ones(len(rings), dtype=bool)
    new_part_c[1:] = (ring_part[1:] != ring_part[:-1])
    simple_at = np.flatnonzero(simple)
    owner = np.concatenate([simple_at, ring_shape])
    order = np.argsort(owner, kind="stable")  # rings of one complex shape keep their order
    items = np.concatenate([arr[simple_at], rings])[order]
    new_part = np.concatenate([np.ones(len(simple_at), dtype=bool), new_part_c])[order]
    xy, coord_ring = shapely.get_coordinates(items, return_index=True)
    ring_sizes = np.bincount(coord_ring, minlength=len(items)).astype(np.int64)
    rings_per_shape = np.bincount(owner, minlength=len(arr)).astype(np.int64)
    return PackedShapes(np.ascontiguousarray(xy, dtype=np.float64), ring_sizes, new_part, rings_per_shape)


def unpack(xy: NDArray[np.float64], ring_sizes: NDArray[np.int64], new_part: NDArray[np.bool_]) -> BaseGeometry:
    """One footprint from its rings (``xy`` holds exactly its rings, in order)."""
    bounds = np.concatenate([[0], np.cumsum(ring_sizes)])
    polys: list[BaseGeometry] = []
    shell: NDArray[np.float64] | None = None
    holes: list[NDArray[np.float64]] = []
    for r in range(len(ring_sizes)):
        ring = xy[bounds[r]:bounds[r + 1]]
        if new_part[r]:
            if shell is not None:
                polys.append(shapely.Polygon(shell, holes))
            shell, holes = ring, []
        else:
            holes.append(ring)
    if shell is not None:
        polys.append(shapely.Polygon(shell, holes))
    if len(polys) == 1:
        return polys[0]
    return shapely.MultiPolygon(polys)
