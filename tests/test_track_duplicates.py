"""Positions fed twice are stored once, on both backends: the key (party, track, time) is unique in the store, so a
replay after a restart (a new service and tracker over the same database, their memory empty) skips every position
it already stored and reports them as ``already_stored``; a position at another time, or of another party, is new."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from forewarn.core.model import Party
from forewarn.service.compose import open_track_store
from forewarn.service.notices import Forewarn
from forewarn.service.settings import Settings
from forewarn.service.tracking import Tracker, TrackSettings
from forewarn.store import Repository, SQLiteRepository
from forewarn.tracks.model import PositionBatch

BACKENDS = ("sqlite", "postgres")
NOW = datetime(2015, 11, 17, 12, 0, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
def reopen(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Repository]]:
    """A function opening the same database again (a restart); every repository opened is closed at the end."""
    opened: list[Any] = []
    if request.param == "sqlite":
        def again() -> Repository:
            opened.append(SQLiteRepository(tmp_path / "dup.sqlite"))
            return opened[-1]  # type: ignore[no-any-return]
    else:
        from forewarn.store.postgres.repository import PostgresRepository
        request.getfixturevalue("postgres_repo")  # empties the session's database
        url = request.getfixturevalue("postgres_url")

        def again() -> Repository:
            opened.append(PostgresRepository(url, max_size=2))
            return opened[-1]  # type: ignore[no-any-return]
    yield again
    for repo in opened:
        repo.close()


def flight(track_id: str, n: int, t0: float = NOW.timestamp()) -> PositionBatch:
    t = t0 + np.arange(n, dtype=float)
    return PositionBatch(track_id=np.full(n, track_id, dtype=object), t_s=t, lat_deg=np.full(n, 35.0),
                         lon_deg=38.0 + 0.0025 * np.arange(n), alt_m=np.full(n, 3000.0), gs_mps=np.full(n, 228.0),
                         track_deg=np.full(n, 90.0), vs_mps=np.zeros(n))


def tracker(repo: Repository, tmp_path: Path) -> Tracker:
    service = Forewarn(repo, Settings(db=tmp_path / "unused.sqlite"))
    for pid in ("east", "west"):
        if repo.get_party(pid) is None:
            service.put_party(Party(id=pid, name=pid))
    return Tracker(service, open_track_store(repo), TrackSettings(predict_interval_s=float("inf")))


def test_a_replay_after_a_restart_stores_nothing_twice(reopen: Callable[[], Repository], tmp_path: Path) -> None:
    first = tracker(reopen(), tmp_path)
    batch = PositionBatch.concat([flight("a1", 20), flight("b2", 10)])
    assert first.ingest(batch, "east", "file", NOW).accepted == 30
    restarted = tracker(reopen(), tmp_path)  # new process: empty quality memory, same database
    again = restarted.ingest(batch, "east", "file", NOW)
    assert again.accepted == 0 and again.counts["rejected:already_stored"] == 30
    assert sorted(i for i, r in again.rejected if r == "already_stored") == list(range(30))
    store = open_track_store(reopen())
    assert store.count_positions() == 30
    # a later part of the same flight, overlapping the first: only the new times go in, rows keep their numbers
    overlap = flight("a1", 30)
    result = restarted.ingest(overlap, "east", "file", NOW)
    assert result.accepted == 10 and {i for i, r in result.rejected if r == "already_stored"} == set(range(20))
    # the same track id and times fed by another party are that party's positions
    assert restarted.ingest(flight("a1", 5), "west", "file", NOW).accepted == 5
    assert store.count_positions() == 45 and store.count_positions("west") == 5


def test_the_store_skips_stored_keys_and_repeats_within_a_batch(reopen: Callable[[], Repository],
                                                               tmp_path: Path) -> None:
    repo = reopen()
    tracker(repo, tmp_path)  # parties
    store = open_track_store(repo)
    batch = flight("a1", 5)
    with repo.transaction():
        assert store.add_positions("east", "s", batch) == 0
    twice = PositionBatch.concat([flight("a1", 7), flight("a1", 7, NOW.timestamp() + 6)])  # t+6 twice in itself
    with repo.transaction():
        assert store.stored("east", twice).tolist() == [True] * 5 + [False] * 2 + [False] * 7
        assert store.add_positions("east", "s", twice, ["f"] * 14) == 5 + 1
    assert store.count_positions() == 5 + 8
    times = np.sort(np.concatenate([c.batch.t_s for c in store.positions("east")]))
    assert times.tolist() == (NOW.timestamp() + np.arange(13)).tolist()  # each time once, exactly
    nudged = flight("a1", 1, NOW.timestamp() + 1e-6)  # times are compared exactly: a microsecond later is new
    with repo.transaction():
        assert store.add_positions("east", "s", nudged) == 0
    assert store.count_positions() == 14
