"""Group commit (``Forewarn._group_commit``): filings queued together run serially in one transaction, each in
its own savepoint. Checked on a real SQLite file with real threads: a batch really forms, every filing of it sees
the ones before it, a rejected filing (bad input, a forged signature, a stale amendment) is undone alone, and a
failed COMMIT fails the whole batch, stores nothing and restores the live picture."""

from __future__ import annotations

import gc
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from forewarn.errors import ForewarnError
from forewarn.http.submissions import address
from forewarn.ledger.keys import key_id_of
from forewarn.service import group_commit as service_module
from forewarn.service.notices import Forewarn
from forewarn.service.settings import Settings
from forewarn.store import SQLiteRepository
from tests.builders import circle, operation
from tests.test_ledger import NOW, counts, make_service, register, signed_notice


def run_as_one_batch(s: Forewarn, calls: list[Callable[[], Any]]) -> list[Any]:
    """Start every call in its own thread while the test holds the service lock, wait until all of them are
    queued, then let go: the first thread to get the lock runs them all in one batch. Returns each call's result
    or the exception it raised, in order."""
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            results[i] = calls[i]()
        except Exception as exc:  # the test looks at it
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    with s.commits._lock:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while len(s.commits._queue) < len(calls):
            assert time.monotonic() < deadline, "the filings were never queued"
            time.sleep(0.005)
    for t in threads:
        t.join(60)
    assert not s.commits._queue
    return results


def test_a_batch_forms_and_each_filing_sees_the_ones_before_it(db_path: Path) -> None:
    s = make_service(db_path)
    commits = count_commits(s)
    ops = [operation(f"op{i}", party, [circle(38.0 + 0.001 * i, 35.0)])
           for i, party in enumerate(["usa", "rus", "fra", "usa", "rus"])]
    out = run_as_one_batch(s, [partial(s.notify, op, NOW) for op in ops])
    assert commits() == 1  # one BEGIN ... COMMIT for the five filings
    filed_before: dict[str, set[str]] = {o.operation_id: {c.b.operation_id for c in o.conflicts} for o in out}
    # serial order: each filing met exactly the earlier filings of the other parties (all volumes intersect)
    order = sorted(out, key=lambda o: o.notice_id)
    for k, o in enumerate(order):
        expected = {p.operation_id for p in order[:k] if p.party_id != o.party_id}
        assert filed_before[o.operation_id] == expected
    assert set(s.airspace.operations) == {op.id for op in ops}
    assert len(s.repo.list_notices()) == 5 and s.ledger.verify().ok


def count_commits(s: Forewarn) -> Callable[[], int]:
    """A counter of the repository's outermost transactions from now on."""
    repo = s.repo
    original = repo.transaction
    seen = [0]

    @contextmanager
    def counting() -> Iterator[None]:
        outermost = not getattr(repo._local, "depth", 0)  # type: ignore[attr-defined]
        with original():
            yield
        if outermost:
            seen[0] += 1

    repo.transaction = counting  # type: ignore[method-assign]
    return lambda: seen[0]


def test_rejected_filings_are_undone_alone(db_path: Path) -> None:
    s = make_service(db_path)
    usa = register(s, "usa")
    s.notify(operation("mine", "rus", [circle(40.0, 35.0)]), NOW)
    amended_twice = s.amend("mine", 1, "rus", NOW, volumes=[circle(40.0, 35.1)])
    assert amended_twice.version == 2
    before = counts(db_path)
    forged_op, forged = signed_notice(Ed25519PrivateKey.generate(), "usa", "forged", lon=38.2,
                                      key_id=key_id_of(usa.public_key()))
    good_op, good_sig = signed_notice(usa, "usa", "good", lon=38.1)
    remember = s._remember

    def failing_late(idem: Any, status: int, outcome: Any, now: Any) -> None:
        """A failure after the filing wrote its version, notice, deliveries and ledger entries."""
        if outcome.operation_id == "boom":
            raise RuntimeError("failed after writing")
        remember(idem, status, outcome, now)

    s._remember = failing_late  # type: ignore[method-assign]
    calls: list[Callable[[], Any]] = [
        lambda: s.notify(operation("a", "rus", [circle(38.0, 35.0)]), NOW),
        lambda: s.notify(forged_op, NOW, party_signature=forged),  # forged: rejected, the rejection recorded
        lambda: s.notify(operation("mine", "usa", [circle(38.0, 35.0)]), NOW),  # another party's id: forbidden
        lambda: s.amend("mine", 1, "rus", NOW, volumes=[circle(40.0, 35.2)]),  # stale version: 409
        lambda: s.notify(operation("late", "fra", [circle(38.0, 35.0, start_h=-5, end_h=-4)]), NOW),  # ended
        lambda: s.notify(good_op, NOW, party_signature=good_sig),
        lambda: s.notify(operation("boom", "fra", [circle(38.0, 35.0)]), NOW),  # fails after its writes
        lambda: s.cancel("mine", "rus", NOW),
    ]
    out = run_as_one_batch(s, calls)
    codes = [o.code if isinstance(o, ForewarnError) else type(o).__name__ for o in out]
    assert codes == ["NoticeOutcome", "unauthenticated", "invalid_transition", "stale_version", "invalid_input",
                     "NoticeOutcome", "RuntimeError", "NoticeOutcome"]
    # the good filings saw each other; nothing of the rejected ones is stored or live
    assert {c.b.operation_id for c in out[5].conflicts} == {"a"}
    assert not [d for d in s.repo.list_deliveries("usa") if d.payload.get("operation", {}).get("id") == "boom"]
    assert set(s.airspace.operations) == {"a", "good"}
    after = counts(db_path)
    assert [e.kind for e in s.repo.iter_ledger()].count("rejection") == 1  # the forged signature's
    assert after["operations"] == before["operations"] + 2  # a, good (mine was already there)
    assert after["notices"] == before["notices"] + 3  # a, good, the cancellation
    assert {o.id for o in s.repo.list_operations()} == {"mine", "a", "good"}
    assert s.repo.get_operation("mine").version == 2  # type: ignore[union-attr]
    assert s.ledger.verify().ok


class FailingCommit(SQLiteRepository):
    """A SQLite repository whose next outermost COMMIT fails as a full disk would."""

    fail_next = False

    @contextmanager
    def transaction(self) -> Iterator[None]:
        outermost = not getattr(self._local, "depth", 0)
        with super().transaction():
            yield
            if outermost and self.fail_next:
                self.fail_next = False
                raise sqlite3.OperationalError("database or disk is full")


def test_a_failed_commit_fails_the_whole_batch_and_restores_the_live_picture(db_path: Path) -> None:
    seed = make_service(db_path)
    seed.notify(operation("kept", "usa", [circle(38.0, 35.0)]), NOW)
    seed.repo.close()  # type: ignore[attr-defined]
    s = Forewarn(FailingCommit(db_path), Settings(db=db_path), addresses=address)
    live = {k: v.version for k, v in s.airspace.operations.items()}
    before = counts(db_path)
    s.repo.fail_next = True  # type: ignore[attr-defined]
    calls: list[Callable[[], Any]] = [
        lambda: s.notify(operation("n1", "rus", [circle(38.0, 35.0)]), NOW),
        lambda: s.amend("kept", 1, "usa", NOW, volumes=[circle(38.5, 35.0)]),
        lambda: s.cancel("kept", "usa", NOW + timedelta(seconds=1)),  # amended in this batch, then cancelled
        lambda: s.notify(operation("n2", "fra", [circle(38.0, 35.0)]), NOW),
    ]
    out = run_as_one_batch(s, calls)
    assert all(isinstance(o, sqlite3.OperationalError) for o in out), out
    assert counts(db_path) == before
    assert {k: v.version for k, v in s.airspace.operations.items()} == live
    # the service goes on: the same filings succeed next time
    again = s.notify(operation("n1", "rus", [circle(38.0, 35.0)]), NOW)
    assert [c.b.operation_id for c in again.conflicts] == ["kept"]
    assert s.ledger.verify().ok


@pytest.mark.parametrize("threads", [16])
def test_many_threads_file_concurrently_and_every_pair_is_reported(db_path: Path, threads: int) -> None:
    s = make_service(db_path)
    parties = ["usa", "rus", "fra"]
    results: list[Any] = []
    lock = threading.Lock()

    def file(i: int) -> None:
        out = s.notify(operation(f"c{i:02d}", parties[i % 3], [circle(38.0, 35.0)]), NOW)
        with lock:
            results.append(out)

    pool = [threading.Thread(target=file, args=(i,)) for i in range(threads * 3)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(60)
    assert len(results) == threads * 3
    owner = {o.operation_id: o.party_id for o in results}
    reported = {frozenset((o.operation_id, c.b.operation_id)) for o in results for c in o.conflicts}
    pairs = {frozenset((a, b)) for a in owner for b in owner if a < b and owner[a] != owner[b]}
    assert reported == pairs  # every intersecting pair of different parties reported once, to the later filer
    assert s.ledger.verify().ok


def test_the_objects_of_every_hundred_filings_are_frozen_out_of_the_collectors_walks(
        db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service_module, "FREEZE_EVERY", 3)
    s = make_service(db_path)

    def walked_by_the_collector(obj: object) -> bool:
        return gc.is_tracked(obj) and any(o is obj for o in gc.get_objects())

    frozen = gc.get_freeze_count()
    s.notify(operation("f1", "usa", [circle(38.0, 35.0)]), NOW)
    s.notify(operation("f2", "rus", [circle(40.0, 35.0)]), NOW)
    volumes = s.airspace.operations["f2"].volumes
    assert walked_by_the_collector(volumes)  # not yet frozen
    s.notify(operation("f3", "fra", [circle(42.0, 35.0)]), NOW)
    assert not walked_by_the_collector(volumes) and gc.is_tracked(volumes)  # frozen: out of every generation
    assert gc.get_freeze_count() > frozen + 100


def test_queued_filings_run_on_the_sequencer_thread_and_answer_through_futures(db_path: Path) -> None:
    s = make_service(db_path)
    ran_on: list[str] = []

    def view(outcome: Any) -> tuple[str, int]:
        ran_on.append(threading.current_thread().name)
        return outcome.operation_id, len(outcome.conflicts)

    with s.commits._lock:  # queue them all before the sequencer can run: one batch
        futures = [s.queued(s.notice_work(operation(f"q{i}", party, [circle(38.0, 35.0)]), NOW), view)
                   for i, party in enumerate(["usa", "rus", "fra"])]
        bad = s.queued(s.notice_work(operation("q0", "fra", [circle(38.0, 35.0)]), NOW), view)  # another's id
        assert not any(f.done() for f in [*futures, bad])
    assert [f.result(30) for f in futures] == [("q0", 0), ("q1", 1), ("q2", 2)]
    with pytest.raises(ForewarnError) as info:
        bad.result(30)
    assert info.value.code == "invalid_transition"  # the id is not available, whoever holds it
    assert ran_on == ["forewarn-sequencer"] * 3
    # a view that fails: the filing is stored (it was committed), its caller gets the error
    broken = s.queued(s.notice_work(operation("q3", "usa", [circle(50.0, 35.0)]), NOW), lambda o: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        broken.result(30)
    assert s.repo.get_operation("q3") is not None
    # the sequencer ends when idle and a new one starts on demand
    deadline = time.monotonic() + 10
    while s.commits._sequencer is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert s.commits._sequencer is None
    again = s.queued(s.transition_work("q3", "usa", NOW, "cancel"), lambda o: o.kind)
    assert again.result(30) == "cancel" and "q3" not in s.airspace.operations
    assert s.ledger.verify().ok


def test_more_filings_queued_than_one_batch_holds_all_run(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service_module, "GROUP_COMMIT_MAX", 2)
    s = make_service(db_path)
    commits = count_commits(s)
    ops = [operation(f"m{i}", ["usa", "rus", "fra"][i % 3], [circle(38.0 + 0.001 * i, 35.0)]) for i in range(7)]
    ahead = [service_module._Job(s.notice_work(op, NOW)) for op in ops[:6]]  # queued by callers not yet running
    s.commits._queue.extend(ahead)
    last = s.notify(ops[6], NOW)  # seventh in the queue: this call runs batches until its own has run
    assert last.operation_id == "m6" and all(job.done and job.outcome is not None for job in ahead)
    assert [job.outcome.operation_id for job in ahead if job.outcome] == [op.id for op in ops[:6]]
    assert commits() == 4  # batches of at most two
    assert set(s.airspace.operations) == {op.id for op in ops} and s.ledger.verify().ok
