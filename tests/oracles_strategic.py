"""Brute-force oracles of strategic detection, used only by tests: the answers the index and the compiled screen
must reproduce exactly, computed the slow and obvious way (every stored volume tested, shapely everywhere)."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from datetime import datetime

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry

from forewarn.core.airspace import AgreementBook, QueryArrays, search_box
from forewarn.core.conflicts import Conflict, _unmeasured, describe_conflict, volumes_conflict
from forewarn.core.model import Operation, SeparationMinima
from forewarn.geo.index import Box4D, VolumeIndex
from forewarn.geo.packed import PackedShapes
from forewarn.geo.volume import Volume4D


def index_brute_force(index: VolumeIndex[Hashable], box: Box4D) -> list[Hashable]:
    """The keys :meth:`VolumeIndex.query` must return, by scanning every entry (lon/lat closed, altitude and time
    half-open)."""
    b, keys = index.live_arrays()
    q = box
    mask = ((b[:, 0] <= q.maxx) & (b[:, 2] >= q.minx) & (b[:, 1] <= q.maxy) & (b[:, 3] >= q.miny)
            & (b[:, 4] < q.upper) & (b[:, 5] > q.lower) & (b[:, 6] < q.end) & (b[:, 7] > q.start))
    return [k for k in (keys[i] for i in np.flatnonzero(mask).tolist()) if k is not None]


def detect_brute_force(
    operation: Operation, others: Iterable[Operation], book: AgreementBook, now: datetime | None = None
) -> list[Conflict]:
    """The same answer as :func:`forewarn.core.conflicts.detect`, by testing every volume of every other
    operation with the exact 4D test."""
    found: list[Conflict] = []
    others = sorted((o for o in others if o.id != operation.id), key=lambda o: o.id)
    for i, a in enumerate(operation.volumes):
        shape_a = a.shape
        for theirs in others:
            for j, b in enumerate(theirs.volumes):
                found.extend(_test_pair(operation, i, a, shape_a, theirs, j, b, b.shape, book, now, True))
    return found


def _test_pair(
    mine: Operation, i: int, a: Volume4D, shape_a: BaseGeometry,
    theirs: Operation, j: int, b: Volume4D, shape_b: BaseGeometry, book: AgreementBook,
    now: datetime | None, measure: bool,
) -> list[Conflict]:
    if theirs.party_id == mine.party_id:
        return []
    bound = book.minima(mine.party_id, theirs.party_id, mine.activity_class, theirs.activity_class)
    if bound is None:
        return []
    minima, agreement = bound
    if not volumes_conflict(a, b, shape_b, minima):
        return []
    if not measure:
        return [_unmeasured(mine, i, theirs, j, minima, agreement, now)]
    return [describe_conflict(mine, i, a, shape_a, theirs, j, b, shape_b, minima, agreement, now)]


def pack_slow(geoms: NDArray[np.object_] | list[BaseGeometry]) -> PackedShapes:
    """:func:`forewarn.geo.packed.pack` by splitting every footprint into parts and rings."""
    arr = np.asarray(geoms, dtype=object)
    types = shapely.get_type_id(arr)
    if len(arr) and not np.all((types == 3) | (types == 6)):
        raise ValueError("only Polygon and MultiPolygon footprints can be packed")
    parts, part_of = shapely.get_parts(arr, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    xy, coord_ring = shapely.get_coordinates(rings, return_index=True)
    ring_sizes = np.bincount(coord_ring, minlength=len(rings)).astype(np.int64)
    new_part = np.ones(len(rings), dtype=bool)
    new_part[1:] = ring_part[1:] != ring_part[:-1]
    rings_per_shape = np.bincount(part_of[ring_part], minlength=len(arr)).astype(np.int64)
    return PackedShapes(np.ascontiguousarray(xy, dtype=np.float64), ring_sizes, new_part, rings_per_shape)


def query_arrays_slow(operation: Operation, largest: SeparationMinima) -> QueryArrays:
    """:func:`forewarn.core.airspace.query_arrays` through shapely and :func:`search_box`."""
    vols = operation.volumes
    shapes = [v.shape for v in vols]
    packed = pack_slow(shapes)
    boxes = np.asarray([search_box(v, largest).row() for v in vols], dtype=np.float64)
    vals = np.asarray([(v.start_s, v.end_s, v.lower_m, v.upper_m) for v in vols], dtype=np.float64)
    bounds = np.asarray([s.bounds for s in shapes], dtype=np.float64)
    size = 0.5 * np.hypot((bounds[:, 2] - bounds[:, 0]) * 111_320.0, (bounds[:, 3] - bounds[:, 1]) * 111_695.0)
    ring_start = np.concatenate([[0], np.cumsum(packed.ring_sizes)]).astype(np.int64)
    vol_rings = np.concatenate([[0], np.cumsum(packed.rings_per_shape)]).astype(np.int64)
    xy = packed.xy
    return (boxes, vals, np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1]), ring_start, vol_rings,
            size)
