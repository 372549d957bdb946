"""Issue 16: pruning the change log (``live_changes``) of a PostgreSQL database shared by several processes.

Two services over one database stand for two processes. Rows are deleted only once every replica heard from has
applied them; a replica not heard from within the retention is forgotten, and when it comes back behind the pruned
rows it reloads the live picture in full, so its next filing still finds the conflicts it missed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from forewarn.core.model import Agreement, Party, SeparationMinima
from forewarn.service.notices import Forewarn
from forewarn.service.replica import ReplicaKeeper
from forewarn.service.settings import Settings
from forewarn.store.postgres.repository import PostgresRepository
from tests.builders import circle, operation
from tests.conftest import T0

NOW = T0 - timedelta(hours=3)
RETENTION = timedelta(minutes=15)


@pytest.fixture
def pair(postgres_repo: PostgresRepository, postgres_url: str, tmp_path: Path) -> Iterator[tuple[Forewarn, Forewarn]]:
    a = Forewarn(postgres_repo, Settings(db=tmp_path / "unused.sqlite"))
    a.put_party(Party(id="usa", name="Coalition"))
    a.put_party(Party(id="rus", name="Russia"))
    a.put_agreement(Agreement(id="mou", name="MoU", parties=["usa", "rus"], min_notice_s=0,
                              default_minima=SeparationMinima(horizontal_m=1000, vertical_m=300, time_s=60)), NOW)
    other = PostgresRepository(postgres_url, max_size=2)
    try:
        yield a, Forewarn(other, Settings(db=tmp_path / "unused.sqlite"))
    finally:
        other.close()


def rows(repo: PostgresRepository) -> int:
    row = repo.row("SELECT count(*) FROM live_changes")
    assert row is not None
    return int(row[0])


def keeper(svc: Forewarn) -> ReplicaKeeper:
    assert svc.commits.replica is not None
    return ReplicaKeeper(svc.commits.replica, every_s=60, retention_s=RETENTION.total_seconds(), clock=lambda: NOW)


def seqs(repo: PostgresRepository) -> list[int]:
    return [int(r[0]) for r in repo.rows("SELECT seq FROM live_changes ORDER BY seq")]


def test_rows_a_live_replica_has_not_applied_are_kept(pair: tuple[Forewarn, Forewarn]) -> None:
    a, b = pair
    ra, rb = a.commits.replica, b.commits.replica
    assert ra is not None and rb is not None
    ka, kb = keeper(a), keeper(b)
    ka.tick()  # both report their positions (before the filings below), as each server does at its start
    kb.tick()
    a.notify(operation("usa-1", "usa", [circle(38.0, 35.0)]), NOW)
    a.notify(operation("usa-2", "usa", [circle(38.0, 35.0)]), NOW)
    unseen_by_b = [s for s in seqs(a.repo) if s > rb.seen]
    assert len(unseen_by_b) >= 2
    ka.tick()  # b has not applied them: they stay
    assert seqs(a.repo) == unseen_by_b
    outcome = b.notify(operation("rus-1", "rus", [circle(38.0, 35.0)]), NOW)  # b catches up, then files
    assert {c.b.operation_id for c in outcome.conflicts} == {"usa-1", "usa-2"}
    assert kb.tick() == len(unseen_by_b)  # both have applied them now (any process prunes); b's filing waits for a
    assert seqs(a.repo) and min(seqs(a.repo)) > ra.seen
    later = a.notify(operation("usa-3", "usa", [circle(38.0, 35.0)]), NOW)  # a catches up on b's filing
    assert "rus-1" in {c.b.operation_id for c in later.conflicts}
    kb.tick()
    ka.tick()
    assert [s for s in seqs(a.repo) if s <= min(ra.seen, rb.seen)] == []
    assert ra.reloads == rb.reloads == 0


def test_a_replica_forgotten_past_the_retention_reloads_and_still_finds_every_conflict(
        pair: tuple[Forewarn, Forewarn]) -> None:
    a, b = pair
    kb = keeper(b)
    kb.tick()
    a.notify(operation("usa-1", "usa", [circle(38.0, 35.0)]), NOW)
    a.notify(operation("usa-2", "usa", [circle(38.0, 35.0)]), NOW)
    a.cancel("usa-2", "usa", NOW)
    assert a.commits.replica is not None
    later = ReplicaKeeper(a.commits.replica, every_s=60, retention_s=RETENTION.total_seconds(),
                          clock=lambda: NOW + RETENTION + timedelta(seconds=1))
    assert later.tick() >= 3  # b was not heard from within the retention: forgotten, and every row goes
    assert rows(a.repo) == 0
    outcome = b.notify(operation("rus-1", "rus", [circle(38.0, 35.0)]), NOW)
    assert b.commits.replica is not None and b.commits.replica.reloads == 1
    assert {c.b.operation_id for c in outcome.conflicts} == {"usa-1"}  # the cancelled one is not live
    assert set(b.airspace.operations) == {"usa-1", "rus-1"}


def test_a_process_stopping_no_longer_holds_back_pruning(pair: tuple[Forewarn, Forewarn]) -> None:
    a, b = pair
    kb = keeper(b)
    kb.tick()
    a.notify(operation("usa-1", "usa", [circle(38.0, 35.0)]), NOW)
    assert keeper(a).tick() == 0
    kb.stop()  # never started: only forgets the replica
    assert keeper(a).tick() >= 1 and rows(a.repo) == 0


def test_a_process_starting_after_a_full_prune_does_not_reload(pair: tuple[Forewarn, Forewarn],
                                                               postgres_url: str, tmp_path: Path) -> None:
    a, _ = pair
    a.notify(operation("usa-1", "usa", [circle(38.0, 35.0)]), NOW)
    keeper(a).tick()
    assert rows(a.repo) == 0
    repo = PostgresRepository(postgres_url, max_size=2)
    try:
        c = Forewarn(repo, Settings(db=tmp_path / "unused.sqlite"))
        outcome = c.notify(operation("rus-1", "rus", [circle(38.0, 35.0)]), NOW)
        assert c.commits.replica is not None and c.commits.replica.reloads == 0
        assert {x.b.operation_id for x in outcome.conflicts} == {"usa-1"}
    finally:
        repo.close()
