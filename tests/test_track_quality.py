"""Feed-quality checks: the vectorised FeedQuality against an obvious per-record loop written here.

The reference below re-states the rules of :mod:`forewarn.tracks.quality` one record at a time with ``math``
(its own haversine): sort the batch's valid rows by (track, time), compare each with the last accepted point of
its track, keep that point (and the time its position was first reported) only when the row is accepted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import TypeVar

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Geod

from forewarn.tracks.feeds import read_feed
from forewarn.tracks.model import Position, PositionBatch
from forewarn.tracks.quality import FeedQuality, Flag, QualityConfig, QualityResult, Reason, haversine_m
from tests.conftest import TRAFFIC_SAMPLES

SAMPLES = TRAFFIC_SAMPLES
needs_samples = pytest.mark.usefixtures("traffic_samples")  # skipped without them on a laptop, failed in CI


# --- the slow reference -------------------------------------------------------------------------------------------


def slow_distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(min(max(h, 0.0), 1.0)))


@dataclass
class Kept:
    p: Position
    fix_t: float


def eq(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


class SlowQuality:
    """One record at a time; the same rules, written as plainly as possible."""

    def __init__(self, cfg: QualityConfig) -> None:
        self.cfg = cfg
        self.kept: dict[tuple[str, str], Kept] = {}

    def row_reason(self, p: Position, vmax: float) -> str | None:
        c = self.cfg

        def bad(x: float, low: float, high: float) -> bool:
            return math.isinf(x) or x < low or x > high

        if not isinstance(p.track_id, str) or not p.track_id or any(map(math.isnan, (p.t_s, p.lat_deg, p.lon_deg))):
            return "missing"
        if not c.min_t_s <= p.t_s <= c.max_t_s:
            return "time_out_of_range"
        if not abs(p.lat_deg) <= 90:
            return "lat_out_of_range"
        if not -180 <= p.lon_deg <= 180:
            return "lon_out_of_range"
        if bad(p.alt_m, c.min_alt_m, c.max_alt_m):
            return "alt_out_of_range"
        if bad(p.gs_mps, 0, vmax):
            return "speed_out_of_range"
        if bad(p.vs_mps, -c.max_vs_mps, c.max_vs_mps):
            return "vertical_speed_out_of_range"
        if bad(p.track_deg, 0, 360):
            return "track_out_of_range"
        return None

    def check(self, rows: list[Position], source: str, vmax: float | None = None) -> tuple[
            list[int], dict[int, str], dict[int, set[str]]]:
        c = self.cfg
        vmax = c.max_speed_mps if vmax is None else vmax
        rejected: dict[int, str] = {}
        valid = []
        for i, p in enumerate(rows):
            reason = self.row_reason(p, vmax)
            if reason:
                rejected[i] = reason
            else:
                valid.append(i)
        valid.sort(key=lambda i: (rows[i].track_id, rows[i].t_s))
        accepted: list[int] = []
        flags: dict[int, set[str]] = {}
        for i in valid:
            p = rows[i]
            k = self.kept.get((source, p.track_id))
            reason = None
            if k is not None:
                a = k.p
                if p.t_s < a.t_s:
                    reason = "time_backwards"
                elif p.t_s == a.t_s:
                    same = p.callsign == a.callsign and all(
                        eq(getattr(p, f), getattr(a, f)) for f in ("lat_deg", "lon_deg", "alt_m", "gs_mps",
                                                                    "track_deg", "vs_mps"))
                    reason = "duplicate" if same else "time_not_advancing"
                elif slow_distance_m(a.lat_deg, a.lon_deg, p.lat_deg, p.lon_deg) - c.position_noise_m > \
                        vmax * (p.t_s - k.fix_t):
                    reason = "impossible_speed"
                elif abs(p.alt_m - a.alt_m) - c.altitude_noise_m > c.max_vs_mps * (p.t_s - a.t_s):
                    reason = "impossible_vertical_speed"
            if reason:
                rejected[i] = reason
                continue
            accepted.append(i)
            same_pos = k is not None and p.lat_deg == k.p.lat_deg and p.lon_deg == k.p.lon_deg
            fix_t = k.fix_t if (k is not None and same_pos) else p.t_s
            mine = set()
            if same_pos and p.gs_mps > c.frozen_min_gs_mps and p.t_s - fix_t >= c.frozen_after_s:
                mine.add("frozen_position")
            if k is not None and not same_pos:
                moved = slow_distance_m(k.p.lat_deg, k.p.lon_deg, p.lat_deg, p.lon_deg) - c.position_noise_m
                if moved > (c.mismatch_factor * p.gs_mps + c.mismatch_slack_mps) * (p.t_s - k.fix_t):
                    mine.add("speed_mismatch")
            if p.alt_m > c.slow_alt_m and p.gs_mps < c.slow_max_gs_mps:
                mine.add("slow_at_altitude")
            if mine:
                flags[i] = mine
            self.kept[(source, p.track_id)] = Kept(p, fix_t)
        return accepted, rejected, flags


def assert_same(fast: QualityResult, slow: tuple[list[int], dict[int, str], dict[int, set[str]]]) -> None:
    accepted, rejected, flags = slow
    assert fast.accepted_index.tolist() == accepted
    assert fast.reasons() == rejected
    assert fast.flags() == flags
    assert fast.counts["accepted"] + fast.counts["rejected"] == fast.counts["received"]


def assert_same_state(fast: FeedQuality, slow: SlowQuality) -> None:
    for (source, track), k in slow.kept.items():
        kept = fast.last_accepted(source, track)
        assert kept is not None
        assert (kept.t_s, kept.lat_deg, kept.lon_deg, kept.fix_t_s) == (k.p.t_s, k.p.lat_deg, k.p.lon_deg, k.fix_t)


# --- property: vectorised == per record, whatever the batch split -------------------------------------------------

NAN, INF = float("nan"), float("inf")
T = TypeVar("T")
GOOD_PLACES = [(0.0, 0.0), (0.0, 0.001), (0.0, 0.009), (0.001, 0.001), (0.0, 0.5), (1.0, 1.0)]
BAD_PLACES = [(91.0, 0.0), (NAN, 0.0), (0.0, 200.0), (0.0, -180.0), (INF, 0.0)]


def sometimes(good: list[T], bad: list[T]) -> st.SearchStrategy[T]:
    """Mostly the good values (so that tracks build up state), now and then a bad one."""
    return st.sampled_from(good * 4 + bad)


rows_strategy = st.lists(st.builds(
    lambda tid, t, place, alt, gs, trk, vs, cs: Position(tid, t, place[0], place[1], alt, gs, trk, vs, cs),
    sometimes(["a", "a", "b"], [""]),
    sometimes([float(t) for t in range(0, 45, 1)] * 2, [NAN, -1.0, 1e300, INF]),
    sometimes(GOOD_PLACES, BAD_PLACES),
    sometimes([NAN, 0.0, 8000.0], [40_000.0, -1000.0]),
    sometimes([NAN, 0.0, 3.0, 10.0, 30.0, 250.0], [-1.0, 5000.0, INF]),
    sometimes([NAN, 10.0], [400.0]),
    sometimes([NAN, 0.0], [400.0]),
    st.sampled_from(["", "X"]),
), max_size=40)


def split(rows: list[Position], cuts: list[int]) -> list[list[Position]]:
    edges = sorted({0, len(rows), *(c % (len(rows) + 1) for c in cuts)})
    return [rows[a:b] for a, b in pairwise(edges)]


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows_strategy, cuts=st.lists(st.integers(0, 40), max_size=3), window=st.sampled_from([1, 2, 16]),
       lookahead=st.sampled_from([0, 1, 8]), vmax=st.sampled_from([None, 300.0, 5000.0]))
def test_vectorised_check_equals_the_per_record_loop(rows: list[Position], cuts: list[int], window: int,
                                                     lookahead: int, vmax: float | None) -> None:
    cfg = QualityConfig()
    fast, slow = FeedQuality(cfg, window=window, lookahead=lookahead), SlowQuality(cfg)
    for part in split(rows, cuts):
        result = fast.check(PositionBatch.from_positions(part), "src", max_speed_mps=vmax)
        assert_same(result, slow.check(part, "src", vmax))
        assert_same_state(fast, slow)


@settings(max_examples=150, deadline=None)
@given(rows=rows_strategy, cuts=st.lists(st.integers(0, 40), max_size=4))
def test_time_ordered_input_gives_the_same_verdicts_however_it_is_split(rows: list[Position],
                                                                         cuts: list[int]) -> None:
    rows = sorted(rows, key=lambda p: p.t_s if not math.isnan(p.t_s) else 0.0)  # per-track order = input order
    whole = FeedQuality().check(PositionBatch.from_positions(rows), "s")
    split_q = FeedQuality()
    offset = 0
    rejected: dict[int, str] = {}
    flags: dict[int, set[str]] = {}
    accepted: set[int] = set()
    for part in split(rows, cuts):
        r = split_q.check(PositionBatch.from_positions(part), "s")
        rejected |= {i + offset: why for i, why in r.reasons().items()}
        flags |= {i + offset: f for i, f in r.flags().items()}
        accepted |= {int(i) + offset for i in r.accepted_index}
        offset += len(part)
    assert (whole.reasons(), whole.flags(), set(whole.accepted_index.tolist())) == (rejected, flags, accepted)


# --- the rules, one by one ----------------------------------------------------------------------------------------


def batch(*rows: tuple[str, float, float, float] | Position) -> PositionBatch:
    return PositionBatch.from_positions([r if isinstance(r, Position) else Position(*r) for r in rows])


def test_rejects_each_row_defect_with_its_reason() -> None:
    rows = [
        Position("", 10, 0, 0), Position("a", NAN, 0, 0), Position("a", 10, NAN, 0),
        Position("a", -5, 0, 0), Position("a", 10, 90.5, 0), Position("a", 10, 0, 180.5),
        Position("a", 10, 0, 0, alt_m=30_001), Position("a", 10, 0, 0, gs_mps=-0.1),
        Position("a", 10, 0, 0, gs_mps=1201), Position("a", 10, 0, 0, vs_mps=-301),
        Position("a", 10, 0, 0, track_deg=361), Position("a", 10, 0, 0, alt_m=INF),
        Position("ok", 10, 0, 0),
    ]
    result = FeedQuality().check(PositionBatch.from_positions(rows), "s")
    assert result.reasons() == {
        0: Reason.MISSING, 1: Reason.MISSING, 2: Reason.MISSING, 3: Reason.TIME_RANGE, 4: Reason.LAT_RANGE,
        5: Reason.LON_RANGE, 6: Reason.ALT_RANGE, 7: Reason.SPEED_RANGE, 8: Reason.SPEED_RANGE,
        9: Reason.VS_RANGE, 10: Reason.TRACK_RANGE, 11: Reason.ALT_RANGE}
    assert result.accepted_index.tolist() == [12]
    assert result.counts["rejected:missing"] == 3


def test_teleport_is_rejected_and_the_track_continues_from_the_last_good_point() -> None:
    q = FeedQuality()
    # 0.1 deg of latitude is 11.1 km: in 1 s that is 11 km/s, beyond 1,200 m/s; the next point is fine again
    result = q.check(batch(("a", 0, 0, 0), ("a", 1, 0.1, 0), ("a", 2, 0.002, 0)), "s")
    assert result.reasons() == {1: Reason.TELEPORT}
    assert q.last_accepted("s", "a") is not None and q.last_accepted("s", "a").t_s == 2  # type: ignore[union-attr]
    # a missile feed may be allowed more, per call
    assert FeedQuality().check(batch(("m", 0, 0, 0), ("m", 1, 0.02, 0)), "s", max_speed_mps=3000).reasons() == {}


def test_a_rejected_row_does_not_reset_the_fix_time_of_the_anchor() -> None:
    # A at P; X far away (rejected); B back at P (the same fix as A, first reported at t=0); C 1 km on at t=4:
    # 951 m (noise removed) in 4 s since the fix is 238 m/s, within 300 m/s; measured from B (2 s) it would not be
    rows = [Position("a", 0, 0, 0), Position("a", 1, 0, 0.5), Position("a", 2, 0, 0), Position("a", 4, 0, 0.009)]
    for lookahead in (0, 8):
        result = FeedQuality(lookahead=lookahead).check(PositionBatch.from_positions(rows), "s", max_speed_mps=300)
        assert result.reasons() == {1: Reason.TELEPORT}
        assert_same(result, SlowQuality(QualityConfig()).check(rows, "s", 300))
    # the same when the anchor before the rejected row is itself a repeat of an older fix
    rows = [Position("a", 0, 0, 0), Position("a", 2, 0, 0), Position("a", 3, 0, 0.5), Position("a", 4, 0, 0.009)]
    for lookahead in (0, 8):
        result = FeedQuality(lookahead=lookahead).check(PositionBatch.from_positions(rows), "s", max_speed_mps=300)
        assert result.reasons() == {2: Reason.TELEPORT}
        assert_same(result, SlowQuality(QualityConfig()).check(rows, "s", 300))


def test_a_rejection_run_at_the_end_of_one_track_leaves_the_next_track_alone() -> None:
    q = FeedQuality()
    q.check(batch(("b", 100, 1, 1)), "s")
    result = q.check(batch(("a", 0, 0, 0), ("a", 1, 5, 0), ("b", 50, 0, 0.001)), "s")
    assert result.reasons() == {1: Reason.TELEPORT, 2: Reason.BACKWARDS}


def test_state_carries_across_batches_and_rejected_rows_do_not_move_it() -> None:
    q = FeedQuality()
    q.check(batch(("a", 100, 0, 0)), "s")
    second = q.check(batch(("a", 99, 0, 0), ("a", 100, 0, 0), ("a", 100, 0, 0.001), ("a", 101, 5, 0)), "s")
    assert second.reasons() == {0: Reason.BACKWARDS, 1: Reason.DUPLICATE, 2: Reason.SAME_TIME, 3: Reason.TELEPORT}
    kept = q.last_accepted("s", "a")
    assert kept is not None and (kept.t_s, kept.lat_deg) == (100, 0)
    # another source keeps its own state
    assert FeedQuality().check(batch(("a", 99, 0, 0)), "other").reasons() == {}
    assert q.counters("s")["rejected"] == 4 and q.counters("s")["received"] == 5


def test_stale_position_is_flagged_and_the_catch_up_is_judged_from_its_first_report() -> None:
    q = FeedQuality()
    # 200 m/s reported, position frozen for 40 s, then 8 km further: 8 km / 41 s is plausible, 8 km / 1 s is not
    frozen = [Position("a", float(t), 0, 0, gs_mps=200) for t in range(41)]
    catch_up = Position("a", 41, 0, 0.072, gs_mps=200)
    result = q.check(PositionBatch.from_positions([*frozen, catch_up]), "s")
    assert result.reasons() == {}
    flagged = sorted(i for i, f in result.flags().items() if Flag.FROZEN in f)
    assert flagged == list(range(20, 41))  # frozen_after_s = 20 s


def test_speed_mismatch_flags_a_jump_that_returns() -> None:
    q = FeedQuality()
    # reported 100 m/s; an outlier 0.008 deg (890 m) away for one second, below the 1,200 m/s hard limit
    rows = [Position("a", float(t), 0, 0.0009 * t, gs_mps=100) for t in range(5)]
    rows[2] = replace(rows[2], lat_deg=0.008)
    result = q.check(PositionBatch.from_positions(rows), "s")
    assert result.reasons() == {}
    assert {i for i, f in result.flags().items() if Flag.SPEED_MISMATCH in f} == {2, 3}


def test_garbage_never_raises() -> None:
    odd = PositionBatch(
        track_id=np.array([None, 5, "a", "a", "b"], dtype=object),
        t_s=np.array([1e308, -INF, INF, 3.0, NAN]), lat_deg=np.array([1e308, 0, 0, INF, 0]),
        lon_deg=np.array([0, 0, 0, 0, 0.0]), alt_m=np.full(5, -1e308), gs_mps=np.full(5, NAN),
        track_deg=np.full(5, NAN), vs_mps=np.full(5, NAN), callsign=np.array([None, 1, "", "", ""], dtype=object))
    result = FeedQuality().check(odd, "s")
    assert result.counts["rejected"] == 5
    odd.alt_m = np.array(["high", None, 1.0, [1], 2.0], dtype=object)
    odd.t_s = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    odd.lat_deg = np.zeros(5)
    odd.track_id = np.array(["a", "b", "c", "d", "e"], dtype=object)
    assert FeedQuality().check(odd, "s").reasons() == {0: Reason.ALT_RANGE, 3: Reason.ALT_RANGE}
    assert len(FeedQuality().check(PositionBatch.empty(), "s").accepted) == 0


def test_haversine_agrees_with_the_wgs84_geodesic() -> None:
    rng = np.random.default_rng(7)
    lat1, lat2 = rng.uniform(-80, 80, 500), rng.uniform(-80, 80, 500)
    lon1, lon2 = rng.uniform(-180, 180, 500), rng.uniform(-180, 180, 500)
    _, _, geodesic = Geod(ellps="WGS84").inv(lon1, lat1, lon2, lat2)
    assert np.allclose(haversine_m(lat1, lon1, lat2, lon2), geodesic, rtol=0.006, atol=1.0)


# --- the real recordings ------------------------------------------------------------------------------------------


def compare_on_sample(name: str, limit: int | None = None, parts: int = 3) -> dict[str, int]:
    b = read_feed(SAMPLES / name).batch
    rows = b.positions()[:limit]
    fast, slow = FeedQuality(), SlowQuality(QualityConfig())
    totals: dict[str, int] = {}
    for k in range(parts):
        part = rows[k * len(rows) // parts:(k + 1) * len(rows) // parts]
        result = fast.check(PositionBatch.from_positions(part), "rec")
        assert_same(result, slow.check(part, "rec"))
    assert_same_state(fast, slow)
    totals = fast.counters("rec")
    assert totals["received"] == len(rows)
    return totals


@needs_samples
def test_noisy_spoofing_recording_defects_are_caught() -> None:
    counts = compare_on_sample("noisy_spoofing.json.gz")
    # the recording has reports without a position, stale positions repeated while flying, and a stretch where
    # the aircraft reports 50 kt at 38,000 ft (a spoofed GNSS position)
    assert counts["rejected:missing"] > 0
    assert counts["flagged:frozen_position"] > 0
    assert counts["flagged:slow_at_altitude"] > 0
    assert counts["flagged:speed_mismatch"] > 0


@needs_samples
def test_noisy_time_issue_recording_defects_are_caught() -> None:
    counts = compare_on_sample("noisy_time_issue.json.gz")
    # positions stay frozen for minutes while the timestamps advance at 1 Hz, then jump to catch up
    assert counts["flagged:frozen_position"] > 0
    assert counts.get("rejected:impossible_speed", 0) == 0  # the catch-ups are judged from the first report


@needs_samples
def test_quickstart_recording_agrees_with_the_reference() -> None:
    counts = compare_on_sample("quickstart.json.gz", limit=60_000)
    assert counts["accepted"] > 0.9 * counts["received"]


def test_one_sample_altitude_spike_is_rejected_and_the_track_continues_from_before_it() -> None:
    # real defective ADS-B: FL130 -> FL340 -> FL130 in two seconds (6.4 km each way; quickstart's 06a2b1)
    rows = [Position("a", 0, 48.0, 2.0, 3962.4), Position("a", 1, 48.0, 2.001, 10363.2),
            Position("a", 2, 48.0, 2.002, 3962.4), Position("a", 3, 48.0, 2.003, 3970.0)]
    for lookahead in (0, 8):
        result = FeedQuality(lookahead=lookahead).check(PositionBatch.from_positions(rows), "s")
        assert result.reasons() == {1: Reason.CLIMB}
        assert_same(result, SlowQuality(QualityConfig()).check(rows, "s"))
    # a real climb at 20 m/s, and an altitude step of the noise (60 m) in one second, pass
    climb = [Position("b", float(t), 48.0, 2.0 + 0.001 * t, 1000.0 + 20.0 * t) for t in range(5)]
    climb.append(Position("b", 5.0, 48.0, 2.005, 1080.0 + 60.0))
    assert FeedQuality().check(PositionBatch.from_positions(climb), "s").reasons() == {}


@needs_samples
@pytest.mark.parametrize("name", ["quickstart.json.gz", "inflight_refuelling.json.gz", "noisy_time_issue.json.gz"])
def test_altitude_spikes_of_real_recordings_are_rejected(name: str) -> None:
    batch = read_feed(SAMPLES / name).batch
    result = FeedQuality().check(batch, "s")
    acc = result.accepted  # sorted by (track, time)
    same = acc.track_id[1:] == acc.track_id[:-1]
    jump = np.abs(np.diff(acc.alt_m)) / np.maximum(np.diff(acc.t_s), 1e-9)
    assert not np.any(same & (jump > 300.0 + 60.0))  # no accepted step steeper than 300 m/s beyond the noise
    assert result.counts["rejected:impossible_vertical_speed"] > 0
