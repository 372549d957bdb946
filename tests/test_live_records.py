"""The live picture without full records (issue 17): entries and packed volumes in memory, records loaded on
demand through a loader, Conflict records built only when read and unaffected by later changes."""

from __future__ import annotations

import pytest

from forewarn.core.airspace import AgreementBook, Airspace
from forewarn.core.conflicts import detect, find_conflicts
from forewarn.core.live import LOADED_CACHE_SIZE
from forewarn.core.model import Operation
from tests.builders import agreement, operation, square
from tests.conftest import T0
from tests.oracles_strategic import detect_brute_force


def _stored() -> list[Operation]:
    # three operations of party y overlapping a query of party x at 38E 35N, one far away
    return [operation(f"y{k}", "y", [square(38.0 + 0.01 * k, 35.0, 0.1), square(38.0, 35.05, 0.1)], notified_at=T0)
            for k in range(3)] + [operation("far", "y", [square(45.0, 30.0, 0.1)], notified_at=T0)]


class CountingStore:
    """Stands for the store: answers (id, version), counts the calls."""

    def __init__(self, ops: list[Operation]) -> None:
        self.ops = {(o.id, o.version): o for o in ops}
        self.calls: list[tuple[str, int]] = []

    def __call__(self, operation_id: str, version: int) -> Operation | None:
        self.calls.append((operation_id, version))
        return self.ops.get((operation_id, version))


def test_bulk_load_holds_no_records_and_detection_loads_none() -> None:
    stored = _stored()
    store = CountingStore(stored)
    air = Airspace(book=AgreementBook([agreement("ag", ["x", "y"])]), loader=store)
    air.put_many(stored)
    assert air.operations.held == 0 and len(air.operations) == 4 and "y1" in air.operations
    query = operation("mine", "x", [square(38.02, 35.02, 0.05)])
    found = find_conflicts(query, air, T0, measure=False)
    assert len(found) == 6 and store.calls == []  # decided, counted: no record built, nothing loaded
    assert sorted(found.pairs()) == [(0, f"y{k}", j) for k in range(3) for j in range(2)]
    assert found.records() == detect(query, air, T0, measure=False)
    assert detect(query, air, T0) == detect_brute_force(query, stored, air.book, T0)  # measured, from the index
    assert store.calls == []
    assert air.operations["y1"] is stored[1] and store.calls == [("y1", stored[1].version)]
    assert air.operations["y1"] is stored[1] and len(store.calls) == 1  # cached


def test_records_survive_later_changes_of_the_airspace() -> None:
    stored = _stored()
    air = Airspace(book=AgreementBook([agreement("ag", ["x", "y"])]), loader=CountingStore(stored))
    air.put_many(stored)
    query = operation("mine", "x", [square(38.02, 35.02, 0.05)])
    expected = detect(query, air, T0)
    found = find_conflicts(query, air, T0)
    for op in stored:
        air.remove(op.id)
    air.put(operation("other", "y", [square(38.02, 35.02, 0.05)], notified_at=T0))
    air.index.pack()  # slots renumbered
    assert list(found) == expected and len(expected) == 6


def test_records_put_one_by_one_are_held_and_removal_forgets_them() -> None:
    air = Airspace(book=AgreementBook([agreement("ag", ["x", "y"])]), loader=CountingStore([]))
    op = operation("new", "y", [square(38.0, 35.0, 0.1)], notified_at=T0)
    air.put(op)  # not in the store yet (a batch being committed): held
    assert air.operations.held == 1 and air.operations["new"] is op
    air.remove("new")
    assert air.operations.held == 0 and "new" not in air.operations and air.operations.get("new") is None


def test_a_store_without_the_live_version_is_a_clear_error() -> None:
    stored = _stored()
    air = Airspace(book=AgreementBook([agreement("ag", ["x", "y"])]), loader=CountingStore([]))
    air.put_many(stored)
    with pytest.raises(LookupError, match="no version 1 of live operation y0"):
        _ = air.operations["y0"]
    assert LOADED_CACHE_SIZE > 0


def test_without_a_loader_every_record_is_held() -> None:
    stored = _stored()
    air = Airspace(book=AgreementBook([agreement("ag", ["x", "y"])]))
    air.put_many(stored)
    assert air.operations.held == 4 and air.operations["y2"] is stored[2]
