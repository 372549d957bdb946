"""Strategic detection: the index answers exactly as brute force, and the 4D semantics hold at the edges."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forewarn.core.airspace import AgreementBook, Airspace, query_arrays
from forewarn.core.conflicts import Conflict, VolumeRef, detect, horizontal_hits
from forewarn.core.model import Agreement, ClassPairMinima, Operation, SeparationMinima
from forewarn.geo.index import VolumeIndex
from forewarn.geo.kernels import HIT, MISS, UNSURE
from forewarn.geo.volume import Volume4D
from tests.builders import agreement, operation, square
from tests.conftest import T0
from tests.oracles_strategic import detect_brute_force, query_arrays_slow

PARTIES = ["p0", "p1", "p2", "p3"]
CLASSES = ["transport", "strike_area", "drone"]


@st.composite
def volumes(draw: st.DrawFn) -> Volume4D:
    kind = draw(st.sampled_from(["polygon", "circle", "corridor"]))
    lon = 38 + 0.05 * draw(st.integers(0, 10))
    lat = 35 + 0.05 * draw(st.integers(0, 10))
    if kind == "polygon":
        k = 0.05 * draw(st.integers(1, 4))
        footprint = {"kind": "polygon", "coordinates": [[lon, lat], [lon + k, lat], [lon + k, lat + k], [lon, lat + k]]}
    elif kind == "circle":
        footprint = {"kind": "circle", "center": [lon, lat], "radius_m": draw(st.sampled_from([800, 2500, 6000]))}
    else:
        end = [lon + 0.05 * draw(st.integers(1, 6)), lat + 0.05 * draw(st.integers(-3, 3))]
        footprint = {"kind": "corridor", "path": [[lon, lat], end], "half_width_m": draw(st.sampled_from([500, 3000]))}
    lower = 300.0 * draw(st.integers(0, 12))
    start = T0 + timedelta(seconds=600 * draw(st.integers(0, 30)))
    long_window = draw(st.booleans()) and draw(st.booleans())
    if long_window:
        duration = timedelta(days=draw(st.integers(1, 20)))
    else:
        duration = timedelta(seconds=600 * draw(st.integers(1, 18)))
    return Volume4D.model_validate({
        "footprint": footprint, "lower_m": lower, "upper_m": lower + 300.0 * draw(st.integers(1, 8)),
        "start": start, "end": start + duration,
    })


@st.composite
def agreements(draw: st.DrawFn) -> list[Agreement]:
    out = []
    for i in range(draw(st.integers(1, 3))):
        parties = draw(st.lists(st.sampled_from(PARTIES), min_size=2, max_size=4, unique=True))
        minima = SeparationMinima(horizontal_m=draw(st.sampled_from([0, 1852, 5000])),
                                  vertical_m=draw(st.sampled_from([0, 300])), time_s=draw(st.sampled_from([0, 600])))
        extra = []
        if draw(st.booleans()):
            extra.append(ClassPairMinima(classes=(draw(st.sampled_from(CLASSES)), "*"),
                                         horizontal_m=draw(st.sampled_from([0, 9260])), vertical_m=300, time_s=900))
        out.append(Agreement(id=f"ag{i}", name=f"ag{i}", parties=parties, default_minima=minima, class_minima=extra))
    return out


@st.composite
def operations(draw: st.DrawFn, op_id: str) -> Operation:
    return Operation(id=op_id, party_id=draw(st.sampled_from(PARTIES)), activity_class=draw(st.sampled_from(CLASSES)),
                     volumes=draw(st.lists(volumes(), min_size=1, max_size=3)), state="notified",
                     notified_at=T0 - timedelta(hours=draw(st.integers(1, 5))))


@st.composite
def worlds(draw: st.DrawFn) -> tuple[list[Agreement], list[Operation], Operation, list[int]]:
    stored = [draw(operations(f"op{i:02d}")) for i in range(draw(st.integers(2, 14)))]
    query = draw(operations("query"))
    removed = draw(st.lists(st.integers(0, len(stored) - 1), max_size=3, unique=True))
    return draw(agreements()), stored, query, removed


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(worlds())
def test_index_agrees_with_brute_force(world: tuple[list[Agreement], list[Operation], Operation, list[int]]) -> None:
    ags, stored, query, removed = world
    air = Airspace(book=AgreementBook(ags), index=VolumeIndex(cell_deg=0.05, big_cell_count=6))
    air.put_many(stored[: len(stored) // 2])
    for op in stored[len(stored) // 2:]:
        air.put(op)  # some through the delta, some packed
    for i in removed:
        air.remove(stored[i].id)
    live = [op for i, op in enumerate(stored) if i not in removed]
    assert detect(query, air, T0) == detect_brute_force(query, live, air.book, T0)


def _pair_world(a: Volume4D, b: Volume4D, h: float, v: float, t: float) -> list[object]:
    air = Airspace(book=AgreementBook([agreement("ag", ["x", "y"], h=h, v=v, t=t)]))
    air.put(operation("theirs", "y", [b], notified_at=T0))
    return list(detect(operation("mine", "x", [a]), air, T0))


def test_touching_edges_need_a_positive_minimum() -> None:
    west, east = square(38.0, 35.0, 0.1), square(38.1, 35.0, 0.1)
    assert _pair_world(west, east, h=0, v=0, t=0) == []
    assert len(_pair_world(west, east, h=1, v=0, t=0)) == 1


def test_adjacent_windows_and_bands_are_half_open() -> None:
    a = square(38.0, 35.0, 0.1, start_h=1, end_h=2, lower=0, upper=1000)
    later = square(38.0, 35.0, 0.1, start_h=2, end_h=3, lower=0, upper=1000)
    above = square(38.0, 35.0, 0.1, start_h=1, end_h=2, lower=1000, upper=2000)
    assert _pair_world(a, later, h=0, v=0, t=0) == []
    assert _pair_world(a, above, h=0, v=0, t=0) == []
    # a minimum of t seconds makes windows that are exactly t apart NOT conflict, closer ones conflict
    gap_600 = square(38.0, 35.0, 0.1, start_h=2 + 600 / 3600, end_h=3)
    gap_599 = square(38.0, 35.0, 0.1, start_h=2 + 599 / 3600, end_h=3, lower=0, upper=1000)
    assert _pair_world(a, gap_600, h=0, v=0, t=600) == []
    assert len(_pair_world(a, gap_599, h=0, v=0, t=600)) == 1
    assert len(_pair_world(a, above, h=0, v=1, t=0)) == 1


def test_horizontal_minimum_is_geodesic() -> None:
    # two 0.1-degree squares 0.1 degree of longitude apart at 35N: about 9,130 m apart
    west, far = square(38.0, 35.0, 0.1), square(38.2, 35.0, 0.1)
    assert _pair_world(west, far, h=9000, v=0, t=0) == []
    conflicts = _pair_world(west, far, h=9300, v=0, t=0)
    assert len(conflicts) == 1
    sep = conflicts[0].separation.horizontal_m  # type: ignore[attr-defined]
    assert 9100 < sep < 9160


def test_same_party_and_unbound_parties_never_conflict() -> None:
    vol = square(38.0, 35.0, 0.1)
    air = Airspace(book=AgreementBook([agreement("ag", ["x", "y"])]))
    air.put(operation("own", "x", [vol], notified_at=T0))
    air.put(operation("stranger", "z", [vol], notified_at=T0))
    assert detect(operation("mine", "x", [vol]), air, T0) == []


@settings(max_examples=150, deadline=None)
@given(st.floats(-170, 170), st.floats(-74, 74), st.floats(100, 40_000), st.floats(0, 100_000),
       st.sampled_from(["circle", "polygon", "corridor"]))
def test_expanded_bounds_contain_the_real_buffer(lon: float, lat: float, size: float, distance: float,
                                                 kind: str) -> None:
    from forewarn.geo import geodesy

    if kind == "circle":
        footprint: dict[str, object] = {"kind": "circle", "center": [lon, lat], "radius_m": size}
    elif kind == "polygon":
        d = size / 111_000
        footprint = {"kind": "polygon", "coordinates": [[lon, lat], [lon + d, lat + d / 3], [lon, lat + d]]}
    else:
        footprint = {"kind": "corridor", "path": [[lon, lat], [lon + size / 80_000, lat - size / 150_000]],
                     "half_width_m": 500}
    vol = Volume4D.model_validate({"footprint": footprint, "lower_m": 0, "upper_m": 1,
                                   "start": T0, "end": T0 + timedelta(hours=1)})
    box = geodesy.expanded_bounds(vol.shape.bounds, distance)
    if box is None:
        return
    real = vol.buffered(distance).bounds if distance > 0 else vol.shape.bounds
    assert box[0] <= real[0] and box[1] <= real[1] and box[2] >= real[2] and box[3] >= real[3]


def test_shifted_volumes_do_not_keep_stale_cached_times() -> None:
    v = square(38.0, 35.0, 0.1)
    assert v.start_s == v.start.timestamp()  # caches it
    assert v.shape.is_valid  # caches the shape too
    later = v.shifted(seconds=3600, metres=100)
    assert later.start_s == v.start_s + 3600 and later.end_s == v.end_s + 3600
    assert later.lower_m == v.lower_m + 100 and later.shape is v.shape


@st.composite
def pair_footprints(draw: st.DrawFn) -> tuple[Volume4D, Volume4D, float]:
    """Two volumes at the same time and altitude whose footprints lie anywhere from overlapping to ~30 km apart,
    and a horizontal minimum, so that many pairs fall near the buffer's edge."""
    a = draw(volumes())
    b = draw(volumes())
    h = draw(st.sampled_from([0.0, 1e-7, 1.0, 500.0, 1852.0, 5000.0, 9260.0, 20_000.0]))
    same = {"lower_m": 0.0, "upper_m": 300.0, "start": T0, "end": T0 + timedelta(hours=1)}
    return a.model_copy(update=same), b.model_copy(update=same), h


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pair_footprints())
def test_compiled_screen_is_conservative(pair: tuple[Volume4D, Volume4D, float]) -> None:
    # HIT must mean the exact test conflicts, MISS that it does not; only UNSURE may go either way
    a, b, h = pair
    air = Airspace(book=AgreementBook([agreement("ag", ["x", "y"], h=h, v=0, t=0)]))
    air.put(operation("theirs", "y", [b], notified_at=T0))
    _, _, screened = air.screen(operation("mine", "x", [a]))
    exact = horizontal_hits(a, [b.shape], h)[0]
    verdict = int(screened[0]) if len(screened) else MISS
    assert verdict == UNSURE or verdict == (HIT if exact else MISS)


def test_screen_leaves_few_pairs_to_the_exact_test() -> None:
    # squares 0.05 degree apart in longitude at 35N (about 4,565 m): clear misses and hits, one pair near the edge
    west = square(38.0, 35.0, 0.1)
    verdicts = {}
    for h in (3000.0, 4565.0, 6000.0):
        air = Airspace(book=AgreementBook([agreement("ag", ["x", "y"], h=h, v=0, t=0)]))
        air.put(operation("theirs", "y", [square(38.15, 35.0, 0.1)], notified_at=T0))
        _, _, found = air.screen(operation("mine", "x", [west]))
        verdicts[h] = int(found[0]) if len(found) else MISS
    assert verdicts == {3000.0: MISS, 4565.0: UNSURE, 6000.0: HIT}


@pytest.mark.parametrize("lat", [76.0, 79.5, 83.0])
def test_high_latitudes_agree_with_brute_force(lat: float) -> None:
    # beyond the frame's trusted latitudes every pair not clearly overlapping goes to the exact test
    a = square(20.0, lat, 0.3)
    stored = [operation(f"op{i}", "y", [square(20.0 + 0.35 * i, lat + 0.02 * i, 0.3)], notified_at=T0)
              for i in range(4)]
    book = AgreementBook([agreement("ag", ["x", "y"], h=9260.0)])
    air = Airspace(book=book)
    air.put_many(stored)
    mine = operation("mine", "x", [a])
    assert detect(mine, air, T0) == detect_brute_force(mine, stored, book, T0)


def test_footprints_either_side_of_the_antimeridian_are_far_apart() -> None:
    # lon/lat footprints never wrap: 179.95E and 179.95W are 359.9 degrees apart, as for the exact test
    east, west = square(179.85, 10.0, 0.1), square(-179.95, 10.0, 0.1)
    book = AgreementBook([agreement("ag", ["x", "y"], h=0.0)])
    air = Airspace(book=book)
    stored = [operation("theirs", "y", [west], notified_at=T0)]
    air.put_many(stored)
    mine = operation("mine", "x", [east])
    assert detect(mine, air, T0) == detect_brute_force(mine, stored, book, T0) == []


# ------------------------------------------------------------------------------- fast paths against the slow ones
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations("query"), st.sampled_from([0.0, 1852.0, 9260.0, 150_000.0]), st.sampled_from([0.0, 300.0]),
       st.sampled_from([0.0, 900.0]))
def test_query_arrays_fast_path_matches_slow(query: Operation, h: float, v: float, t: float) -> None:
    """query_arrays (one pack() of all footprints, search boxes per volume) gives query_arrays_slow's arrays; 150 km
    takes the buffered-bounds fallback of the search box."""
    largest = SeparationMinima(horizontal_m=h, vertical_m=v, time_s=t)
    fast, slow = query_arrays(query, largest), query_arrays_slow(query, largest)
    for i, (x, y) in enumerate(zip(fast, slow, strict=True)):
        if i == 6:  # size: math.hypot vs np.hypot may differ in the last bit
            assert np.allclose(x, y, rtol=1e-14, atol=0)
        else:
            assert x.dtype == y.dtype and np.array_equal(x, y), i


def test_unmeasured_records_equal_model_construct() -> None:
    """The trusted constructor of the hot path builds what model_construct builds (equal, same dump)."""
    air = Airspace(book=AgreementBook([agreement("ag", ["x", "y"], h=5000, v=300, t=600)]))
    air.put(operation("theirs", "y", [square(38.0, 35.0, 0.1)], notified_at=T0))
    mine = operation("mine", "x", [square(38.05, 35.05, 0.1)])
    (fast,) = detect(mine, air, T0, measure=False)
    slow = Conflict.model_construct(**{name: getattr(fast, name) for name in Conflict.model_fields})
    assert fast == slow and fast.model_dump() == slow.model_dump()
    assert fast.model_fields_set == slow.model_fields_set
    assert fast.a == VolumeRef.model_construct(**fast.a.model_dump())
    assert fast.model_dump_json() == slow.model_dump_json()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(worlds())
def test_unmeasured_detection_agrees_with_brute_force(
    world: tuple[list[Agreement], list[Operation], Operation, list[int]],
) -> None:
    """measure=False (the benchmark's and the service's screening path) reports the brute force's pairs, with the
    same agreement, minima and priority decision."""
    ags, stored, query, removed = world
    air = Airspace(book=AgreementBook(ags), index=VolumeIndex(cell_deg=0.05, big_cell_count=6))
    air.put_many(stored)
    for i in removed:
        air.remove(stored[i].id)
    live = [op for i, op in enumerate(stored) if i not in removed]

    def key(c: Conflict) -> tuple[object, ...]:
        return (c.pair, c.agreement_id, c.minima, c.adjusting_operation, c.holding_operation, c.priority_reason)

    assert [key(c) for c in detect(query, air, T0, measure=False)] == \
        [key(c) for c in detect_brute_force(query, live, air.book, T0)]
