"""Tactical conflict prediction (forewarn.tracks.cpa): fast path == brute force, geometry against pyproj, BlueSky."""

from __future__ import annotations

import math
import warnings
from types import SimpleNamespace
from typing import Any

import numpy as np
import pyproj
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forewarn.tracks.broadphase import candidate_pairs
from forewarn.tracks.cpa import (
    DEFAULT_MINIMA,
    Minima,
    MinimaSpec,
    Model,
    PredictedConflicts,
    TrackVectors,
    predict_conflicts,
)
from forewarn.tracks.model import Position, PositionBatch
from forewarn.units import DISTANCE_TOLERANCE_M
from tests.oracles import predict_conflicts_brute

GEOD = pyproj.Geod(ellps="WGS84")
R = DEFAULT_MINIMA.horizontal_m
V = DEFAULT_MINIMA.vertical_m
MODELS: tuple[Model, ...] = ("geodesic", "bluesky")
TOL = {"geodesic": 1e-3, "bluesky": 6e-3}  # BlueSky's sphere (R = 6,371 km) differs from WGS84 by up to ~0.5 %


def state_near(lat0: float, lon0: float, east_m: Any, north_m: Any, alt_m: Any, gs: Any, trk: Any, vs: Any,
               group: Any = None) -> TrackVectors:
    """Tracks placed by offsets (metres) from a centre, through a local azimuthal-equidistant projection."""
    proj = pyproj.Transformer.from_crs(f"+proj=aeqd +lat_0={lat0} +lon_0={lon0} +ellps=WGS84", "EPSG:4326",
                                       always_xy=True)
    lon, lat = proj.transform(np.asarray(east_m, dtype=float), np.asarray(north_m, dtype=float))
    lon = (np.asarray(lon) + 180.0) % 360.0 - 180.0
    return TrackVectors.from_arrays(lat, lon, alt_m, gs, trk, vs, group)


def random_traffic(n: int, side_m: float, seed: int, lat0: float = 35.0, lon0: float = 38.0) -> TrackVectors:
    """BlueSky-like dense traffic: FL100-FL400, 200-500 kt, 30 % climbing or descending at 1,000-3,000 ft/min."""
    rng = np.random.default_rng(seed)
    climbing = rng.random(n) < 0.3
    vs = np.where(climbing, rng.choice([-1.0, 1.0], n) * rng.uniform(1000, 3000, n) * 0.00508, 0.0)
    return state_near(lat0, lon0, rng.uniform(-side_m / 2, side_m / 2, n), rng.uniform(-side_m / 2, side_m / 2, n),
                      rng.uniform(10_000, 40_000, n) * 0.3048, rng.uniform(200, 500, n) * 0.514444,
                      rng.uniform(0, 360, n), vs)


def scaled(spec: MinimaSpec, factor: float) -> MinimaSpec:
    if isinstance(spec, Minima):
        return Minima(spec.horizontal_m * factor, spec.vertical_m * factor)
    assert isinstance(spec, dict)
    return {k: None if v is None else Minima(v.horizontal_m * factor, v.vertical_m * factor) for k, v in spec.items()}


def assert_same(fast: PredictedConflicts, brute: PredictedConflicts, state: TrackVectors, spec: MinimaSpec,
                lookahead_s: float, model: Any) -> None:
    """Same pairs, up to pairs that rounding can flip (they change with minima scaled by 1 +- 1e-9); same figures."""
    f, b = fast.pairs(), brute.pairs()
    if f != b:
        kw: dict[str, Any] = {"model": model, "default_minima": DEFAULT_MINIMA}
        loose = predict_conflicts_brute(state, scaled(spec, 1 + 1e-9), lookahead_s=lookahead_s * (1 + 1e-9),
                                        **kw).pairs()
        tight = predict_conflicts_brute(state, scaled(spec, 1 - 1e-9), lookahead_s=lookahead_s * (1 - 1e-9),
                                        **kw).pairs()
        assert tight <= f <= loose, (f - b, b - f)
    rows_f = {p: k for k, p in enumerate(zip(fast.i.tolist(), fast.j.tolist(), strict=True))}
    rows_b = {p: k for k, p in enumerate(zip(brute.i.tolist(), brute.j.tolist(), strict=True))}
    common = sorted(f & b)
    kf = np.array([rows_f[p] for p in common], dtype=int)
    kb = np.array([rows_b[p] for p in common], dtype=int)
    for name in ("t_los_s", "t_cpa_s", "h_cpa_m", "v_cpa_m", "horizontal_m", "vertical_m"):
        np.testing.assert_allclose(getattr(fast, name)[kf], getattr(brute, name)[kb], rtol=1e-6, atol=1e-4,
                                   err_msg=name)
    np.testing.assert_array_equal(fast.los_now[kf], brute.los_now[kb])
    assert np.all(np.diff(fast.i) >= 0) and np.all(fast.i < fast.j)


# ------------------------------------------------------------------------------------------- fast == brute force

centres = st.tuples(st.floats(-89.0, 89.0), st.floats(-180.0, 179.999))
offsets = st.floats(-60_000.0, 60_000.0)
speeds = st.one_of(st.just(0.0), st.floats(0.0, 300.0))
vertical_speeds = st.one_of(st.just(0.0), st.floats(-20.0, 20.0))
track_rows = st.tuples(offsets, offsets, st.floats(0.0, 3000.0), speeds, st.floats(0.0, 359.999), vertical_speeds,
                       st.integers(0, 3))
minima_specs = st.one_of(
    st.just(DEFAULT_MINIMA),
    st.builds(Minima, st.floats(500.0, 20_000.0), st.floats(50.0, 1000.0)),
    st.dictionaries(st.tuples(st.integers(0, 3), st.integers(0, 3)),
                    st.one_of(st.none(), st.builds(Minima, st.floats(500.0, 20_000.0), st.floats(50.0, 1000.0))),
                    max_size=6),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(centre=centres, rows=st.lists(track_rows, min_size=0, max_size=30), spec=minima_specs,
       lookahead=st.floats(10.0, 600.0), model=st.sampled_from(MODELS))
def test_fast_equals_brute_force(centre: tuple[float, float], rows: list[tuple[float, ...]], spec: MinimaSpec,
                                 lookahead: float, model: Any) -> None:
    if model == "bluesky" and not isinstance(spec, Minima):
        spec = DEFAULT_MINIMA
    cols: list[Any] = list(zip(*rows, strict=True)) if rows else [[]] * 7
    state = state_near(*centre, *cols)
    fast = predict_conflicts(state, spec, lookahead_s=lookahead, model=model)
    brute = predict_conflicts_brute(state, spec, lookahead_s=lookahead, model=model)
    assert_same(fast, brute, state, spec, lookahead, model)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize(("lat0", "lon0"), [(35.0, 38.0), (0.0, 179.9), (-62.0, -179.95), (84.0, 10.0)])
def test_fast_equals_brute_force_dense(model: Any, lat0: float, lon0: float) -> None:
    """Hundreds of tracks in a small box: many pairs, many grid cells, many cell boundaries."""
    state = random_traffic(300, 150_000.0, seed=abs(int(lat0 * 7 + lon0)), lat0=lat0, lon0=lon0)
    fast = predict_conflicts(state, model=model)
    brute = predict_conflicts_brute(state, model=model)
    assert len(brute) > 20
    assert_same(fast, brute, state, DEFAULT_MINIMA, 300.0, model)


@given(n=st.integers(0, 60), dims=st.integers(1, 4), grid=st.integers(1, 4), slices=st.integers(1, 3),
       sparse=st.booleans(), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=100, deadline=None)
def test_broad_phase_finds_every_overlap_once(n: int, dims: int, grid: int, slices: int, sparse: bool,
                                              seed: int) -> None:
    """Grid broad phase == every pair tested in every slice; boxes of very different sizes, touching, duplicated.

    ``sparse``: half the boxes are thrown a million units away, so the grid has too many cells to index densely and
    the cells are hashed (collisions told apart by their keys)."""
    grid = min(grid, dims)
    rng = np.random.default_rng(seed)
    lo = np.round(rng.uniform(-50, 50, (slices, n, dims)), 0)
    if sparse:
        lo[:, ::2] += np.round(rng.uniform(-1e6, 1e6, (1, len(lo[0, ::2]), dims)), 0)
    hi = lo + rng.choice([0.0, 1.0, 3.0, 40.0], (slices, n, dims))
    if n > 3:
        lo[:, 1], hi[:, 1] = lo[:, 0], hi[:, 0]  # a duplicate box
    group = rng.integers(0, 3, n)
    i, j = candidate_pairs(lo if slices > 1 else lo[0], hi if slices > 1 else hi[0], group, grid_dims=grid)
    found = list(zip(i.tolist(), j.tolist(), strict=True))
    assert len(found) == len(set(found))
    assert all(a < b for a, b in found)
    expected = {(a, b) for a in range(n) for b in range(a + 1, n)
                if group[a] != group[b] and any(np.all(lo[s, a] <= hi[s, b]) and np.all(lo[s, b] <= hi[s, a])
                                                for s in range(slices))}
    assert set(found) == expected


# ------------------------------------------------------------------------------------------- edge cases


@pytest.mark.parametrize("model", MODELS)
def test_head_on(model: Any) -> None:
    # 50 km apart on a meridian, 250 m/s each, nose to nose: closing 500 m/s, CPA at 100 s
    state = state_near(35.0, 38.0, [0, 0], [-25_000, 25_000], [9000, 9000], [250, 250], [0, 180], [0, 0])
    r = predict_conflicts(state, model=model)
    assert r.pairs() == {(0, 1)}
    assert r.t_los_s[0] == pytest.approx((50_000 - R) / 500, rel=TOL[model])
    assert r.t_cpa_s[0] == pytest.approx(100.0, rel=TOL[model])
    assert r.h_cpa_m[0] < 100.0
    assert r.v_cpa_m[0] == 0.0 and not r.los_now[0]
    # the same encounter beyond the look-ahead, or 1,200 ft apart: no conflict
    assert len(predict_conflicts(state, lookahead_s=80.0, model=model)) == 0
    apart = state_near(35.0, 38.0, [0, 0], [-25_000, 25_000], [9000, 9000 + 1200 * 0.3048], [250, 250], [0, 180],
                       [0, 0])
    assert len(predict_conflicts(apart, model=model)) == 0


@pytest.mark.parametrize("model", MODELS)
def test_parallel(model: Any) -> None:
    # side by side on the equator flying north (parallel meridians): in loss of separation for ever at 5 km, never
    # at 12 km. (At 50N the geodesic model sees the meridians converge by 1.3 % in 300 s; BlueSky does not.)
    near = state_near(0.0, 5.0, [0, 5000], [0, 0], [9000, 9000], [230, 230], [0, 0], [0, 0])
    r = predict_conflicts(near, model=model)
    assert r.pairs() == {(0, 1)} and bool(r.los_now[0]) and r.t_los_s[0] == 0.0
    assert r.h_cpa_m[0] == pytest.approx(5000.0, rel=TOL[model])
    far = state_near(0.0, 5.0, [0, 12_000], [0, 0], [9000, 9000], [230, 230], [0, 0], [0, 0])
    assert len(predict_conflicts(far, model=model)) == 0


@pytest.mark.parametrize("model", MODELS)
def test_co_located(model: Any) -> None:
    state = TrackVectors.from_arrays([10.0, 10.0, 10.0], [20.0, 20.0, 20.0], [3000.0] * 3, [100.0] * 3, [45.0] * 3,
                                   [0.0] * 3, group=[1, 1, 2])
    r = predict_conflicts(state, model=model)
    # the two tracks of group 1 are never paired with each other
    assert r.pairs() == {(0, 2), (1, 2)}
    assert np.all(r.los_now) and np.all(r.t_los_s == 0.0) and np.all(r.h_cpa_m < 1e-3)


@pytest.mark.parametrize("model", MODELS)
def test_already_in_loss_and_diverging(model: Any) -> None:
    # 3 km apart flying away from each other at 200 m/s each: separated after (9260 - 3000) / 400 s
    state = state_near(-33.0, 151.0, [-1500, 1500], [0, 0], [5000, 5100], [200, 200], [270, 90], [0, 0])
    r = predict_conflicts(state, model=model)
    assert r.pairs() == {(0, 1)} and bool(r.los_now[0]) and r.t_los_s[0] == 0.0
    assert r.t_cpa_s[0] == 0.0 and r.h_cpa_m[0] == pytest.approx(3000.0, rel=TOL[model])
    # the same geometry seen 20 s later: 11 km apart and diverging, no conflict
    later = state_near(-33.0, 151.0, [-5500, 5500], [0, 0], [5000, 5100], [200, 200], [270, 90], [0, 0])
    assert len(predict_conflicts(later, model=model)) == 0


@pytest.mark.parametrize("model", MODELS)
def test_vertical_only(model: Any) -> None:
    # hovering one above the other (gs 0): the lower one climbs 10 m/s towards the other 2 km above
    state = state_near(60.0, 25.0, [0, 100], [0, 0], [3000, 5000], [0, 0], [0, 0], [10, 0])
    r = predict_conflicts(state, model=model)
    assert r.pairs() == {(0, 1)}
    # geodesic: the boundary rule (loss below V - 1 cm); bluesky: BlueSky's strict comparison
    v_eff = V - DISTANCE_TOLERANCE_M if model == "geodesic" else V
    assert r.t_los_s[0] == pytest.approx((2000 - v_eff) / 10, rel=1e-9)
    assert len(predict_conflicts(state, lookahead_s=160.0, model=model)) == 0
    # level and 2 km apart: never
    level = state_near(60.0, 25.0, [0, 100], [0, 0], [3000, 5000], [0, 0], [0, 0], [0, 0])
    assert len(predict_conflicts(level, model=model)) == 0


@pytest.mark.parametrize("model", MODELS)
def test_chain_across_many_cells(model: Any) -> None:
    # 400 tracks in a line 8 km apart, alternating parties, level and still: exactly the neighbours conflict
    n = 400
    state = state_near(45.0, 7.0, np.arange(n) * 8000.0 - n * 4000.0, np.zeros(n), np.full(n, 9000.0),
                       np.zeros(n), np.zeros(n), np.zeros(n), group=np.arange(n) % 2)
    r = predict_conflicts(state, model=model)
    assert r.pairs() == {(k, k + 1) for k in range(n - 1)}


def test_near_pole_and_across_antimeridian() -> None:
    # over the pole: two aircraft 40 km either side of it flying towards it meet there
    state = TrackVectors.from_arrays([89.82, 89.82], [0.0, 180.0], [9000, 9000], [200, 200], [0.0, 0.0], [0, 0])
    r = predict_conflicts(state)
    assert r.pairs() == {(0, 1)}
    d0 = GEOD.inv(0.0, 89.82, 180.0, 89.82)[2]
    assert r.t_cpa_s[0] == pytest.approx(d0 / 400.0, rel=1e-3)
    # across the antimeridian, head on along the equator
    across = TrackVectors.from_arrays([0.0, 0.0], [179.9, -179.9], [9000, 9000], [200, 200], [90.0, 270.0], [0, 0])
    for model in MODELS:
        ra = predict_conflicts(across, model=model)
        assert ra.pairs() == {(0, 1)}
        assert ra.t_cpa_s[0] == pytest.approx(GEOD.inv(179.9, 0.0, -179.9, 0.0)[2] / 400.0, rel=TOL[model])


# ------------------------------------------------------------------------------------------- geometry vs pyproj


@settings(max_examples=200, deadline=None)
@given(lat=st.floats(-88.0, 88.0), lon=st.floats(-180.0, 180.0), t_meet=st.floats(20.0, 280.0),
       gs=st.tuples(st.floats(50.0, 260.0), st.floats(50.0, 260.0)),
       trk=st.tuples(st.floats(0.0, 360.0), st.floats(0.0, 360.0)), miss=st.floats(0.0, 9000.0),
       miss_az=st.floats(0.0, 360.0))
def test_geodesic_model_matches_pyproj(lat: float, lon: float, t_meet: float, gs: tuple[float, float],
                                       trk: tuple[float, float], miss: float, miss_az: float) -> None:
    """Two aircraft flying geodesics (pyproj) that pass within `miss` metres: CPA distance within 5 m of pyproj's."""
    m_lon, m_lat, _ = GEOD.fwd(lon, lat, miss_az, miss)
    a_lon, a_lat, a_back = GEOD.fwd(lon, lat, trk[0] + 180.0, gs[0] * t_meet)
    b_lon, b_lat, b_back = GEOD.fwd(m_lon, m_lat, trk[1] + 180.0, gs[1] * t_meet)
    state = TrackVectors.from_arrays([a_lat, b_lat], [a_lon, b_lon], [5000, 5000], gs, [a_back % 360, b_back % 360],
                                   [0, 0])
    r = predict_conflicts(state, Minima(20_000.0, 300.0))
    assert r.pairs() == {(0, 1)}
    t = float(r.t_cpa_s[0])
    a2 = GEOD.fwd(a_lon, a_lat, a_back, gs[0] * t)
    b2 = GEOD.fwd(b_lon, b_lat, b_back, gs[1] * t)
    d = GEOD.inv(a2[0], a2[1], b2[0], b2[1])[2]
    assert abs(d - r.h_cpa_m[0]) < 5.0
    assert r.h_cpa_m[0] <= miss + 5.0


# ------------------------------------------------------------------------------------------- minima and parties


def test_minima_per_pair_of_parties() -> None:
    # three parties in a row, 7 km apart, level: 0-1 use 5 km (no conflict), 1-2 default 5 NM, 0-2 not checked
    state = state_near(35.0, 38.0, [0, 7000, 14_000], [0, 0, 0], [9000] * 3, [0] * 3, [0] * 3, [0] * 3,
                       group=[10, 20, 30])
    table: dict[tuple[int, int], Minima | tuple[float, float] | None] = {(20, 10): Minima(5000.0, 300.0),
                                                                          (10, 30): None}
    r = predict_conflicts(state, table)
    assert r.pairs() == {(1, 2)}
    assert r.horizontal_m[0] == R and r.vertical_m[0] == V

    def rule(a: int, b: int) -> tuple[float, float] | None:
        return (20_000.0, 300.0) if {a, b} == {10, 30} else (1000.0, 100.0)

    r2 = predict_conflicts(state, rule)
    assert r2.pairs() == {(0, 2)} and r2.horizontal_m[0] == 20_000.0
    assert r2.pairs() == predict_conflicts_brute(state, rule).pairs()
    with pytest.raises(ValueError, match="global"):
        predict_conflicts(state, table, model="bluesky")


def test_invalid_input_refused() -> None:
    state = TrackVectors.from_arrays([0.0, math.nan], [0.0, 0.0], [0.0, 0.0], [1.0, 1.0], [0.0, 0.0], [0.0, 0.0])
    with pytest.raises(ValueError, match="lat_deg"):
        predict_conflicts(state)
    ok = TrackVectors.from_arrays([0.0], [0.0], [0.0], [1.0], [0.0], [0.0])
    with pytest.raises(ValueError, match="model"):
        predict_conflicts(ok, model="flat")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lookahead"):
        predict_conflicts(ok, lookahead_s=0.0)
    with pytest.raises(ValueError):
        Minima(0.0, 300.0)


def test_state_from_batch_takes_latest_and_extrapolates() -> None:
    batch = PositionBatch.from_positions([
        Position("a", 100.0, 35.0, 38.0, 9000.0, 200.0, 90.0, 0.0),
        Position("a", 90.0, 34.0, 37.0, 9000.0, 200.0, 90.0, 0.0),
        Position("b", 95.0, 35.0, 38.1, 9100.0, 200.0, 270.0, math.nan),
        Position("c", 99.0, 35.0, 38.2, math.nan, 200.0, 270.0, 0.0),
    ])
    state = TrackVectors.from_batch(batch, {"a": 0, "b": 1, "c": 2})
    assert state.track_id is not None and state.track_id.tolist() == ["a", "b"]
    assert state.lon_deg.tolist() == [38.0, 38.1] and state.vs_mps.tolist() == [0.0, 0.0]
    moved = TrackVectors.from_batch(batch, {"a": 0, "b": 1, "c": 2}.__getitem__, at_s=105.0)
    lon_a, lat_a, _ = GEOD.fwd(38.0, 35.0, 90.0, 1000.0)
    lon_b, lat_b, _ = GEOD.fwd(38.1, 35.0, 270.0, 2000.0)
    np.testing.assert_allclose(moved.lon_deg, [lon_a, lon_b])
    np.testing.assert_allclose(moved.lat_deg, [lat_a, lat_b])
    assert moved.group.tolist() == [0, 1]


# ------------------------------------------------------------------------------------------- BlueSky


def bluesky_pairs(state: TrackVectors, detect: Any, *, numpy_api: bool) -> set[tuple[int, int]]:
    n = len(state)
    trk = np.radians(state.track_deg)
    own = SimpleNamespace(lat=state.lat_deg, lon=state.lon_deg, trk=state.track_deg, gs=state.gs_mps,
                          gseast=state.gs_mps * np.sin(trk), gsnorth=state.gs_mps * np.cos(trk), alt=state.alt_m,
                          vs=state.vs_mps, ntraf=n, id=list(range(n)))
    if numpy_api:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PendingDeprecationWarning)  # BlueSky uses np.matrix
            out = detect(None, own, own, R, V, 300.0)
    else:
        out = detect(own, own, np.full(n, R), np.full(n, V), np.full(n, 300.0))
    ordered = {(int(a), int(b)) for a, b in out[0]}
    assert ordered == {(b, a) for a, b in ordered}  # BlueSky reports each pair both ways
    return {(a, b) for a, b in ordered if a < b}


@pytest.mark.parametrize(("seed", "lat0", "lon0"), [(1, 35.0, 38.0), (2, 52.0, 4.0), (3, -20.0, -60.0),
                                                     (4, 72.0, 100.0)])
def test_bluesky_mode_reports_bluesky_pairs(seed: int, lat0: float, lon0: float) -> None:
    pytest.importorskip("bluesky")
    from bluesky.traffic.asas.statebased import StateBased  # type: ignore[import-untyped]

    state = random_traffic(600, 250_000.0, seed, lat0, lon0)
    ours = predict_conflicts(state, model="bluesky")
    assert len(ours) > 30
    assert ours.pairs() == bluesky_pairs(state, StateBased.detect, numpy_api=True)
    try:
        from bluesky.traffic.asas import cstatebased  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - the compiled twin is optional in BlueSky
        return
    assert ours.pairs() == bluesky_pairs(state, cstatebased.detect, numpy_api=False)
