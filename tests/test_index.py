"""The 4D grid index returns exactly what a linear scan returns, through inserts, removals and repacks."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from forewarn.geo.index import Box4D, VolumeIndex
from forewarn.geo.packed import pack
from tests.oracles_strategic import index_brute_force, pack_slow


def random_box(rng: np.random.Generator, big: bool = False) -> Box4D:
    x, y = rng.uniform(30, 40), rng.uniform(30, 36)
    w = rng.uniform(2, 8) if big else rng.choice([0.0, rng.uniform(0.001, 0.4)])
    h = rng.uniform(0.001, 0.4)
    lo = float(rng.choice([0.0, 300.0, 600.0, rng.uniform(0, 12000)]))
    s = float(rng.choice([0.0, 3600.0, rng.uniform(0, 86400 * 3)]))
    return Box4D(x, y, x + w, y + h, lo, lo + rng.uniform(1, 3000), s, s + rng.uniform(1, 6 * 3600))


def test_matches_linear_scan_through_churn() -> None:
    rng = np.random.default_rng(7)
    index: VolumeIndex[int] = VolumeIndex(cell_deg=0.2, big_cell_count=16)
    live: dict[int, Box4D] = {}
    next_key = 0
    for round_ in range(6):
        for _ in range(700):
            box = random_box(rng, big=rng.random() < 0.03)
            index.insert(next_key, box)
            live[next_key] = box
            next_key += 1
        for key in rng.choice(list(live), size=200, replace=False).tolist():
            index.remove(key)
            del live[key]
        if round_ == 3:
            index.pack()
        for _ in range(60):
            q = random_box(rng)
            expected = sorted(k for k, b in live.items() if _meets(b, q))
            assert sorted(index.query(q)) == expected
            assert sorted(index_brute_force(index, q)) == expected
    assert len(index) == len(live)


def _meets(b: Box4D, q: Box4D) -> bool:
    return (b.minx <= q.maxx and b.maxx >= q.minx and b.miny <= q.maxy and b.maxy >= q.miny
            and b.lower < q.upper and b.upper > q.lower and b.start < q.end and b.end > q.start)


def test_half_open_intervals_and_closed_boxes() -> None:
    index: VolumeIndex[str] = VolumeIndex(cell_deg=0.5)
    index.insert("a", Box4D(0, 0, 1, 1, 0, 100, 0, 10))
    # touching in space (closed): found; touching in altitude or time (half-open): not found
    assert index.query(Box4D(1, 1, 2, 2, 50, 60, 5, 6)) == ["a"]
    assert index.query(Box4D(0, 0, 1, 1, 100, 200, 5, 6)) == []
    assert index.query(Box4D(0, 0, 1, 1, 50, 60, 10, 20)) == []
    assert index.query(Box4D(0, 0, 1, 1, 99.999, 200, 9.999, 20)) == ["a"]


def test_replacing_a_key_keeps_one_entry() -> None:
    index: VolumeIndex[str] = VolumeIndex()
    index.insert("a", Box4D(0, 0, 1, 1, 0, 100, 0, 10))
    index.insert("a", Box4D(10, 10, 11, 11, 0, 100, 0, 10))
    assert len(index) == 1
    assert index.query(Box4D(0, 0, 1, 1, 0, 100, 0, 10)) == []
    assert index.query(Box4D(10, 10, 11, 11, 0, 100, 0, 10)) == ["a"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(-179, 179), st.floats(-85, 85), st.floats(0, 3), st.floats(0, 3),
                          st.floats(0, 1e4), st.floats(1, 1e4), st.floats(0, 1e6), st.floats(1, 1e5)),
                min_size=1, max_size=60),
       st.tuples(st.floats(-179, 179), st.floats(-85, 85), st.floats(0, 20), st.floats(0, 20)))
def test_property_query_equals_scan(entries: list[tuple[float, ...]], q: tuple[float, float, float, float]) -> None:
    index: VolumeIndex[int] = VolumeIndex()
    boxes = {}
    for i, (x, y, w, h, lo, dz, s, d) in enumerate(entries):
        boxes[i] = Box4D(x, y, min(x + w, 180), min(y + h, 90), lo, lo + dz, s, s + d)
    index.insert_many(boxes.items())
    query = Box4D(q[0], q[1], min(q[0] + q[2], 180), min(q[1] + q[3], 90), 0, 2e4, 0, 2e6)
    assert sorted(index.query(query)) == sorted(k for k, b in boxes.items() if _meets(b, query))


def test_packed_footprints_come_back_with_the_same_coordinates_after_churn() -> None:
    holed = shapely.Polygon([(0, 0), (4, 0), (4, 4), (0, 4)], [[(1, 1), (2, 1), (2, 2), (1, 2)]])
    multi = shapely.MultiPolygon([shapely.box(10, 10, 11, 11), holed])
    shapes = {"holed": holed, "multi": multi, "square": shapely.box(5, 5, 6, 6)}
    index: VolumeIndex[str] = VolumeIndex(cell_deg=1.0)
    for key, shape in shapes.items():
        minx, miny, maxx, maxy = shape.bounds
        index.insert(key, Box4D(minx, miny, maxx, maxy, 0, 1, 0, 1), tag=7, owner=3, shape=shape)
    index.remove("square")
    index.pack()  # compaction moves the remaining rings
    index.insert("late", Box4D(5, 5, 6, 6, 0, 1, 0, 1), shape=shapes["square"])
    for key in ("holed", "multi"):
        back = index.shape(index.slot(key))
        assert back.geom_type == shapes[key].geom_type
        assert shapely.equals_exact(back, shapes[key], tolerance=0.0)
        assert index.tag_of(index.slot(key)) == 7
    assert shapely.equals_exact(index.shape(index.slot("late")), shapes["square"], tolerance=0.0)


def test_packing_refuses_non_polygons() -> None:
    with pytest.raises(ValueError, match="Polygon"):
        pack([shapely.LineString([(0, 0), (1, 1)])])


def test_pack_fast_path_matches_slow() -> None:
    """pack()'s fast path (polygons without holes) and its mixed path give exactly pack_slow()'s arrays."""
    a = shapely.Polygon([(0, 0), (1, 0), (1, 1), (0, 1)])
    holed = shapely.Polygon([(0, 0), (10, 0), (10, 10), (0, 10)],
                            [[(2, 2), (3, 2), (3, 3)], [(5, 5), (6, 5), (6, 6)]])
    multi = shapely.MultiPolygon([a, shapely.Polygon([(5, 5), (6, 5), (6, 6)])])
    multi_holed = shapely.MultiPolygon([holed, shapely.Polygon([(20, 20), (26, 20), (26, 26)])])
    for shapes in ([a, a], [a, holed, a, multi, multi_holed, a], [holed], [multi_holed, a], []):
        fast, slow = pack(shapes), pack_slow(shapes)
        for name in ("xy", "ring_sizes", "new_part", "rings_per_shape"):
            assert np.array_equal(getattr(fast, name), getattr(slow, name)), name
