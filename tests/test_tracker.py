"""Live tracks end to end on a real SQLite file: conformance, intrusions, predicted entries and conflicts, who is
told what, bad input, restart."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from forewarn.core.model import Party
from forewarn.errors import Forbidden, InvalidInput
from forewarn.service.notices import Forewarn
from forewarn.service.settings import Settings
from forewarn.service.tracking import Tracker, TrackSettings
from forewarn.store import SQLiteRepository
from forewarn.store.sqlite.tracks import TrackStore
from forewarn.tracks.model import Position, PositionBatch
from tests.builders import agreement, circle, operation, square
from tests.conftest import T0

NOW = T0 - timedelta(hours=3)
START_S = T0.timestamp() + 3600.0
M_PER_DEG_LON = 91_290.0  # at 35.1 N, near enough for placing test tracks (the code under test uses pyproj)


def make(path: Path) -> Forewarn:
    return seed(Forewarn(SQLiteRepository(path), Settings(db=path)))


def seed(svc: Forewarn) -> Forewarn:
    """Parties a, b, c; agreement ab (5 km, 300 m); a's active square and b's notified circle (see below)."""
    for pid in ("a", "b", "c"):
        svc.put_party(Party(id=pid, name=pid, kind="military"))  # type: ignore[arg-type]
    svc.put_agreement(agreement("ab", ["a", "b"], h=5000, v=300, t=600))
    # a's square (38.0-38.2 E, 35.0-35.2 N), flying; b's circle of 5 km around 38.5 E 35.1 N, notified
    svc.notify(operation("a-op", "a", [square(38.0, 35.0, 0.2, 1000, 5000, 1, 3)]), NOW)
    svc.activate("a-op", "a", NOW + timedelta(minutes=1))
    svc.notify(operation("b-op", "b", [circle(38.5, 35.1, 5000, 1000, 5000, 1, 3)]), NOW + timedelta(minutes=2))
    return svc


def straight(track_id: str, lon0: float, heading: float, k: int, step_s: float = 20.0, gs: float = 250.0,
             lat: float = 35.1, alt: float = 2000.0) -> Position:
    """Position number ``k`` of a track flying due east (90) or west (270) along ``lat``."""
    sign = 1.0 if heading == 90.0 else -1.0
    return Position(track_id, START_S + k * step_s, lat, lon0 + sign * gs * k * step_s / M_PER_DEG_LON, alt, gs,
                    heading, 0.0, track_id.upper())


def deliveries_by_party(svc: Forewarn) -> dict[str, list[dict[str, object]]]:
    out: dict[str, list[dict[str, object]]] = {}
    for d in svc.repo.list_deliveries():
        if d.reason == "alert":
            out.setdefault(d.party_id, []).append(d.payload["alert"])
    return out


def test_conformance_intrusion_and_predicted_entry(db_path: Path) -> None:
    svc = make(db_path)
    tracker = Tracker(svc, TrackStore(svc.repo))
    kinds: list[tuple[int, str, str]] = []
    for k in range(12):
        result = tracker.ingest(PositionBatch.from_positions([straight("a1", 38.1, 90.0, k)]), "a", "radar",
                                NOW + timedelta(hours=4), operation_id="a-op")
        assert result.accepted == 1 and result.rejected == []
        kinds += [(k, a.kind, a.encounter) for a in result.alerts]
    # k=2 is the first position east of 38.2 E + 185 m; k=7 the first inside b's circle (from 38.4452 E); k=10 the
    # first past it (38.5548 E: k=9 is at 38.593 E); the straight path of k=0 (75 km ahead) already crosses the circle
    assert kinds == [
        (0, "predicted_entry", "entry:a/a1|b-op"),
        (2, "nonconforming", "conformance:a/a1"),
        (7, "intrusion", "intrusion:a/a1|b-op"),
        (7, "cleared", "entry:a/a1|b-op"),
        (9, "cleared", "intrusion:a/a1|b-op"),
    ]
    alerts = TrackStore(svc.repo).list_alerts()
    entry = next(a for a in alerts if a.kind == "predicted_entry")
    expected = (38.5 - 5000 / M_PER_DEG_LON - 38.1) * M_PER_DEG_LON / 250.0  # about 126 s
    assert expected <= (entry.time_to_entry_s or 0) <= expected + 5.0 + 1.0
    # the owner hears everything; b hears of what concerns its volume, not of a's conformance far from it
    told = deliveries_by_party(svc)
    assert [a["kind"] for a in told["a"]] == ["predicted_entry", "nonconforming", "intrusion", "cleared", "cleared"]
    assert [a["kind"] for a in told["b"]] == ["predicted_entry", "intrusion", "cleared", "cleared"]
    assert "c" not in told
    assert {a.id for a in TrackStore(svc.repo).open_alerts()} == {a.id for a in alerts if a.kind == "nonconforming"}


def test_back_inside_clears_nonconformance_and_endangered_party_is_told(db_path: Path) -> None:
    svc = make(db_path)
    tracker = Tracker(svc, TrackStore(svc.repo))
    # inside a-op, then 2 km from b's circle (endangering it), then back inside a-op (400 s later, plausible speed)
    path = [Position("a2", START_S, 35.1, 38.15, 2000.0, 200.0, 90.0, 0.0),
            Position("a2", START_S + 200, 35.1, 38.15 + 40_000 / M_PER_DEG_LON, 2000.0, 200.0, 90.0, 0.0),
            Position("a2", START_S + 600, 35.1, 38.15, 2000.0, 200.0, 270.0, 0.0)]
    seen = []
    for p in path:
        seen += [(a.kind, a.notify) for a in tracker.ingest(PositionBatch.from_positions([p]), "a", "radar", NOW,
                                                            operation_id="a-op").alerts
                 if a.encounter.startswith("conformance:")]
    assert seen == [("nonconforming", ("b",)), ("conforming", ())]
    stored = TrackStore(svc.repo).list_alerts()
    nonconforming = next(a for a in stored if a.kind == "nonconforming")
    assert next(a for a in stored if a.kind == "conforming").clears == nonconforming.id
    assert "nonconforming" in [a["kind"] for a in deliveries_by_party(svc)["b"]]
    assert [t.conforming for t in TrackStore(svc.repo).list_tracks(["a"])] == [True]


def test_predicted_conflict_raised_once_then_cleared(db_path: Path) -> None:
    svc = make(db_path)
    tracker = Tracker(svc, TrackStore(svc.repo), TrackSettings(clear_after_s=30.0))
    conflicts = []
    # head-on along 35.3 N (clear of both volumes), 60 km apart, closing at 500 m/s, 2,000 m both
    for k in range(20):
        for party, track, lon0, heading in (("a", "a9", 38.0, 90.0), ("b", "b9", 38.0 + 60_000 / M_PER_DEG_LON,
                                                                        270.0)):
            out = tracker.ingest(PositionBatch.from_positions([straight(track, lon0, heading, k, lat=35.3)]), party,
                                 "radar", NOW)
            conflicts += [a for a in out.alerts if a.encounter.startswith("conflict:")]
    raised = [a for a in conflicts if a.kind == "predicted_conflict"]
    cleared = [a for a in conflicts if a.kind == "cleared"]
    assert len(raised) == 1 and len(cleared) == 1 and cleared[0].clears == raised[0].id
    first = raised[0]
    assert (first.party_id, first.track_id, first.other_party_id, first.other_track_id) == ("a", "a9", "b", "b9")
    # prediction runs once per second of feed time, at the first report of a new second: at k=1 (a9's report),
    # with b9 extrapolated 20 s: 50 km apart, 5 km minima lost after (50 - 5) km / 500 m/s = 90 s; minimum
    # distance about 0 (same line); metres and seconds
    assert first.at.timestamp() == START_S + 20
    assert first.time_to_los_s == pytest.approx(90.0, abs=2.0)
    assert (first.min_distance_m or 0) < 200.0
    # cleared only after the tracks passed each other (60 s) and diverged for clear_after_s
    assert cleared[0].at.timestamp() - START_S >= 120.0 + 30.0
    told = deliveries_by_party(svc)
    assert sum(a["kind"] == "predicted_conflict" for a in told["a"]) == 1
    assert sum(a["kind"] == "predicted_conflict" for a in told["b"]) == 1


def test_parties_without_agreement_are_neither_compared_nor_told(db_path: Path) -> None:
    svc = make(db_path)
    tracker = Tracker(svc, TrackStore(svc.repo))
    # c's track flies head-on at a's track and straight through a's volume: c has no agreement with a
    for k in range(15):
        tracker.ingest(PositionBatch.from_positions([straight("a7", 37.5, 90.0, k)]), "a", "radar", NOW)
        tracker.ingest(PositionBatch.from_positions([straight("c7", 38.3, 270.0, k)]), "c", "radar", NOW)
    told = deliveries_by_party(svc)
    assert "c" not in told
    assert all(a["other_party_id"] != "c" and a["party_id"] != "c" for alerts in told.values() for a in alerts)
    assert {t.party_id for t in tracker.visible_tracks("a")} == {"a"}
    assert {t.party_id for t in tracker.visible_tracks("c")} == {"c"}


def test_bad_rows_are_rejected_and_bad_requests_store_nothing(db_path: Path) -> None:
    svc = make(db_path)
    store = TrackStore(svc.repo)
    tracker = Tracker(svc, store)
    assert tracker.ingest(PositionBatch.from_positions([straight("a3", 37.0, 90.0, 0)]), "a", "radar",
                          NOW).accepted == 1
    rows = [Position("a3", START_S + 20, 95.0, 37.0, 2000.0),  # latitude out of range
            Position("a3", START_S - 20, 35.1, 37.0, 2000.0, 250.0, 90.0, 0.0),  # older than the accepted point
            Position("a3", START_S + 40, 35.1, 39.5, 2000.0, 250.0, 90.0, 0.0),  # 230 km in 40 s
            straight("a3", 37.0, 90.0, 1)]
    result = tracker.ingest(PositionBatch.from_positions(rows), "a", "radar", NOW)
    assert result.accepted == 1
    assert dict(result.rejected) == {0: "lat_out_of_range", 1: "time_backwards", 2: "impossible_speed"}
    assert store.count_positions() == 2
    assert store.quality()["a/radar"]["rejected"] == 3
    before = sqlite3.connect(db_path).execute("SELECT count(*), sum(n) FROM track_chunks").fetchone()
    with pytest.raises(InvalidInput):
        tracker.ingest(PositionBatch.from_positions([straight("z", 37.0, 90.0, 1)]), "nobody", "radar", NOW)
    with pytest.raises(Forbidden):
        tracker.ingest(PositionBatch.from_positions([straight("b3", 37.0, 90.0, 1)]), "b", "radar", NOW,
                       operation_id="a-op")
    with pytest.raises(InvalidInput):
        tracker.ingest(PositionBatch.from_positions([straight("a3", 37.0, 90.0, 1)]), "a", "", NOW)
    assert sqlite3.connect(db_path).execute("SELECT count(*), sum(n) FROM track_chunks").fetchone() == before


def test_restart_keeps_open_encounters_and_track_states(db_path: Path) -> None:
    svc = make(db_path)
    tracker = Tracker(svc, TrackStore(svc.repo))
    for k in range(8):  # into b's circle: an open intrusion
        tracker.ingest(PositionBatch.from_positions([straight("a4", 38.1, 90.0, k)]), "a", "radar", NOW)
    assert "intrusion:a/a4|b-op" in tracker.open
    svc2 = Forewarn(SQLiteRepository(db_path), Settings(db=db_path))
    again = Tracker(svc2, TrackStore(svc2.repo))
    assert set(again.open) == set(tracker.open)
    assert again.tracks[("a", "a4")].last == tracker.tracks[("a", "a4")].last
    # still inside: no second intrusion alert; leaving clears the one opened before the restart
    out = [a.kind for k in (8, 9, 10)
           for a in again.ingest(PositionBatch.from_positions([straight("a4", 38.1, 90.0, k)]), "a", "radar",
                                 NOW).alerts]
    assert out == ["cleared"]
    assert all(a.kind != "intrusion" for a in TrackStore(svc2.repo).open_alerts())


def test_stored_chunks_give_back_exactly_the_accepted_positions(db_path: Path) -> None:
    svc = make(db_path)
    store = TrackStore(svc.repo)
    tracker = Tracker(svc, store)
    rows = [straight("s1", 37.0, 90.0, k) for k in range(5)] + [
        Position("s2", START_S, 35.5, 37.5, float("nan"), 200.0, 10.0, float("nan"), ""),
        Position("s2", START_S + 20, 35.5, 37.5, float("nan"), 200.0, 10.0, float("nan"), ""),  # frozen: flagged
        Position("s3", START_S, 95.0, 37.5, 1000.0)]  # rejected
    tracker.ingest(PositionBatch.from_positions(rows[:3]), "a", "radar", NOW)
    tracker.ingest(PositionBatch.from_positions(rows[3:]), "a", "radar", NOW)
    chunks = store.positions("a")
    got = [p for c in chunks for p in c.batch.positions()]

    def key(p: Position) -> tuple[object, ...]:
        return tuple("nan" if isinstance(v, float) and v != v else v for v in
                     (p.track_id, p.t_s, p.lat_deg, p.lon_deg, p.alt_m, p.gs_mps, p.track_deg, p.vs_mps, p.callsign))

    assert sorted(map(key, got)) == sorted(map(key, rows[:7]))
    assert store.count_positions("a") == 7 and store.count_positions("b") == 0
    assert [f for c in chunks for f in c.flags if f] == ["frozen_position"]
    window = [p.t_s for c in store.positions("a", START_S + 30, START_S + 70) for p in c.batch.positions()]
    assert sorted(window) == [START_S + 40, START_S + 60]


def test_intrusions_are_judged_on_the_volumes_as_the_intruder_is_shown_them(db_path: Path) -> None:
    """b's envelope is coarsened for a (30' grid): a is told of an intrusion as soon as it is inside the coarsened
    envelope (conservative for b, and probing positions cannot find b's exact boundary)."""
    from forewarn.core.model import Coarsening

    svc = make(db_path)
    svc.put_agreement(agreement("ab", ["a", "b"], h=5000, v=300, t=600,
                                coarsening=Coarsening(of=["b"], grid_arcmin=30)))
    tracker = Tracker(svc, TrackStore(svc.repo))
    # 0.2 deg west of b's 5 km circle around 38.5 E: outside it, inside the coarsened 38.0-39.0 E x 35.0-35.5 N
    p = Position("a5", START_S, 35.1, 38.3, 2000.0, 10.0, 0.0, 0.0)
    kinds = [(a.kind, a.other_operation_id) for a in
             tracker.ingest(PositionBatch.from_positions([p]), "a", "radar", NOW).alerts]
    assert ("intrusion", "b-op") in kinds
    # b's own track at the same place is judged on its own (exact) volumes: nothing of a's square there
    q = Position("b5", START_S, 35.1, 38.3, 2000.0, 10.0, 0.0, 0.0)
    assert tracker.ingest(PositionBatch.from_positions([q]), "b", "radar", NOW).alerts == []


def test_a_one_sample_altitude_spike_raises_no_intrusion(db_path: Path) -> None:
    # a's track crosses b's circle 3 km above its band (top 5,000 m), one report says 3,000 m: 5 km in one second
    svc = make(db_path)
    tracker = Tracker(svc, TrackStore(svc.repo))
    rows = [straight("a9", 38.49, 90.0, k, step_s=1.0, alt=8000.0) for k in range(6)]
    rows[3] = replace(rows[3], alt_m=3000.0)
    result = tracker.ingest(PositionBatch.from_positions(rows), "a", "adsb", NOW + timedelta(hours=4))
    assert result.rejected == [(3, "impossible_vertical_speed")]
    assert [a.kind for a in result.alerts if a.kind == "intrusion"] == []
    assert all(a.kind != "intrusion" for a in TrackStore(svc.repo).list_alerts())


def test_a_batch_whose_transaction_failed_is_taken_when_resent(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    svc = make(db_path)
    store = TrackStore(svc.repo)
    tracker = Tracker(svc, store)
    batch = PositionBatch.from_positions([straight("a9", 38.0, 90.0, k, lat=35.3) for k in range(3)])

    def broken(*args: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    with monkeypatch.context() as patch:
        patch.setattr(store, "add_quality", broken)
        with pytest.raises(sqlite3.OperationalError):
            tracker.ingest(batch, "a", "radar", NOW)
    assert store.count_positions() == 0
    assert tracker.ingest(batch, "a", "radar", NOW).accepted == 3  # not refused as duplicates of what was not stored
