"""Issue 16, live tracks across processes, in one test process: two services, each with its own connection pool,
airspace and tracker (as two ``forewarn serve`` processes have), on one fresh PostgreSQL database. Positions fed
to either tracker reach the one shared tracker state (docs/tracks.md, "Several processes"). The same flows with
real server processes and kill -9: tests/test_multiprocess_tracks.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from forewarn.service.compose import open_track_store
from forewarn.service.notices import Forewarn
from forewarn.service.settings import Settings
from forewarn.service.tracking import Tracker, TrackSettings
from forewarn.store.postgres.repository import PostgresRepository
from forewarn.tracks.alerts import TrackAlert
from forewarn.tracks.model import PositionBatch
from tests.conftest import PostgresServer
from tests.test_tracker import M_PER_DEG_LON, NOW, deliveries_by_party, seed, straight

B0 = 38.0 + 60_000 / M_PER_DEG_LON
"""Start longitude of b's track: 60 km east of a's, head-on along 35.3 N (clear of every volume)."""


@pytest.fixture
def two(postgres_server: PostgresServer, tmp_path: Path) -> Iterator[tuple[Tracker, Tracker]]:
    """Two trackers on one fresh database; the second service starts before anything is stored, so it learns the
    parties' agreement and operations only through the change log."""
    url = postgres_server.create()
    services: list[Forewarn] = []
    for _ in range(2):
        services.append(Forewarn(PostgresRepository(url, max_size=3), Settings(db=tmp_path / "unused.sqlite")))
    seed(services[0])
    settings = TrackSettings(clear_after_s=30.0)
    yield Tracker(services[0], open_track_store(services[0].repo), settings), \
        Tracker(services[1], open_track_store(services[1].repo), settings)
    for s in services:
        s.repo.close()


def feed(tracker: Tracker, party: str, track: str, lon0: float, heading: float, k: int) -> list[TrackAlert]:
    batch = PositionBatch.from_positions([straight(track, lon0, heading, k, lat=35.3)])
    return tracker.ingest(batch, party, "radar", NOW).alerts


def test_parties_fed_through_different_processes_get_one_predicted_conflict(two: tuple[Tracker, Tracker]) -> None:
    one, other = two
    alerts: list[TrackAlert] = []
    for k in range(20):
        alerts += feed(one, "a", "a9", 38.0, 90.0, k)
        alerts += feed(other, "b", "b9", B0, 270.0, k)
    conflicts = [a for a in alerts if a.encounter.startswith("conflict:")]
    raised = [a for a in conflicts if a.kind == "predicted_conflict"]
    cleared = [a for a in conflicts if a.kind == "cleared"]
    assert len(raised) == 1 and len(cleared) == 1 and cleared[0].clears == raised[0].id
    first = raised[0]
    assert (first.party_id, first.track_id, first.other_party_id, first.other_track_id) == ("a", "a9", "b", "b9")
    # as with one tracker (tests/test_tracker.py): the passes are paced on the shared time of the last pass, so
    # b's first report (k = 0, same feed time as a's) runs none, and the first pass is a's at k = 1, with b9
    # extrapolated 20 s: 50 km apart closing at 500 m/s, 5 km minima lost after 90 s
    assert first.at.timestamp() == straight("a9", 38.0, 90.0, 1).t_s
    assert first.time_to_los_s == pytest.approx(90.0, abs=2.0)
    # the hysteresis is shared: passes of both trackers kept it open until the tracks had passed each other (60 s)
    # and diverged for clear_after_s (30 s)
    assert cleared[0].at.timestamp() - first.at.timestamp() >= 60.0 + 30.0
    told = deliveries_by_party(one.service)
    assert [sum(a["kind"] == "predicted_conflict" for a in told[p]) for p in ("a", "b")] == [1, 1]
    assert [sum(a["kind"] == "cleared" for a in told[p]) for p in ("a", "b")] == [1, 1]
    # both trackers hold the same picture: both tracks, no encounter open
    for tracker in two:
        tracker.refresh(max_age_s=0)  # reads refresh at most every REFRESH_S: this one now
        assert [(s.party_id, s.last.track_id, s.last.t_s) for s in tracker.visible_tracks("a")] == [
            ("a", "a9", straight("a9", 38.0, 90.0, 19).t_s), ("b", "b9", straight("b9", B0, 270.0, 19).t_s)]
        assert not [k for k in tracker.open if k.startswith("conflict:")]
    assert one.service.ledger.verify().ok


def test_a_position_already_in_the_shared_state_is_not_taken_again(two: tuple[Tracker, Tracker]) -> None:
    one, other = two
    feed(one, "a", "a9", 38.0, 90.0, 0)
    feed(one, "a", "a9", 38.0, 90.0, 1)
    # the same feed, replayed from the start through the other process (whose feed screen never saw it)
    first = other.ingest(PositionBatch.from_positions([straight("a9", 38.0, 90.0, k, lat=35.3) for k in range(3)]),
                         "a", "radar", NOW)
    # rows 0 and 1 are in the store already (same party, track and time): skipped as such, whatever process
    assert first.rejected == [(0, "already_stored"), (1, "already_stored")]
    assert (first.accepted, first.counts["accepted"]) == (1, 1)
    assert one.store.count_positions("a") == 3
    # a position older than the shared state but never stored (t = 30 s, between the stored 20 s and 40 s): the
    # other process's feed screen never saw the track move on; the shared state refuses it
    older = other.ingest(PositionBatch.from_positions([straight("a9", 38.0, 90.0, 3, step_s=10.0, lat=35.3)]),
                         "a", "radar", NOW)
    assert older.rejected == [(0, "time_backwards")] and older.accepted == 0
    again = one.ingest(PositionBatch.from_positions([straight("a9", 38.0, 90.0, 2, lat=35.3)]), "a", "radar", NOW)
    assert again.accepted == 0
    states = one.store.list_tracks(["a"])
    assert [s.last.t_s for s in states] == [straight("a9", 38.0, 90.0, 2).t_s]


def test_a_failed_transaction_changes_nothing_and_the_tracker_reloads_the_shared_state(
        two: tuple[Tracker, Tracker], monkeypatch: pytest.MonkeyPatch) -> None:
    one, other = two
    feed(one, "a", "a9", 38.0, 90.0, 0)
    feed(other, "b", "b9", B0, 270.0, 0)

    def broken(alerts: object) -> None:
        raise RuntimeError("disk full")

    with monkeypatch.context() as patch:  # the pass that raises the conflict fails at its last write
        patch.setattr(one.store, "add_alerts", broken)
        with pytest.raises(RuntimeError):
            feed(one, "a", "a9", 38.0, 90.0, 1)
    assert one.store.count_positions("a") == 1 and one.store.list_alerts() == []
    assert one.shared is not None and one.shared.stale
    again = feed(one, "a", "a9", 38.0, 90.0, 1)  # the client resends: taken now, from the reloaded state
    assert [a.kind for a in again] == ["predicted_conflict"]
    assert [a.kind for a in feed(other, "b", "b9", B0, 270.0, 1)] == []
    assert [a.kind for a in one.store.list_alerts()] == ["predicted_conflict"]


def test_an_encounter_predicted_again_by_one_process_is_held_open_by_the_other(two: tuple[Tracker, Tracker]) -> None:
    one, other = two
    for k in range(2):
        feed(one, "a", "a9", 38.0, 90.0, k)
        feed(other, "b", "b9", B0, 270.0, k)
    key = "conflict:a/a9|b/b9"
    raised = one.open[key]
    t1 = straight("a9", 38.0, 90.0, 1).t_s
    assert other.predict(NOW, t1 + 5) == []  # still predicted: not raised again, its hysteresis moves on
    one.refresh(max_age_s=0)
    assert (one.open[key].id, one.encounters.seen[key].last_seen_s, one.encounters.seen[key].updates) == (
        raised.id, t1 + 5, 1)
