"""Live tracks tell each party only what the operations *as shown to it* give (issue 20): conformance is decided on
the exact volumes, so a party shown the operation coarsened is not told it; the parties a straying track endangers
are found on the volumes as the track's owner is shown them."""

from __future__ import annotations

from pathlib import Path

from forewarn.core.model import Coarsening
from forewarn.service.tracking import Tracker
from forewarn.store.sqlite.tracks import TrackStore
from forewarn.tracks.model import Position, PositionBatch
from tests.builders import agreement
from tests.test_tracker import M_PER_DEG_LON, NOW, START_S, make


def stray(tracker: Tracker, lon: float) -> list[tuple[str, tuple[str, ...]]]:
    """a's track inside a-op (38.0-38.2 E), then out at ``lon`` (35.1 N): the conformance alerts (kind, told)."""
    path = [Position("a2", START_S, 35.1, 38.15, 2000.0, 200.0, 90.0, 0.0),
            Position("a2", START_S + 200, 35.1, lon, 2000.0, 200.0, 90.0, 0.0)]
    out = []
    for p in path:
        out += [(a.kind, a.notify) for a in tracker.ingest(PositionBatch.from_positions([p]), "a", "radar", NOW,
                                                           operation_id="a-op").alerts
                if a.encounter.startswith("conformance:")]
    return out


def test_a_party_shown_the_operation_coarsened_is_not_told_its_conformance(db_path: Path) -> None:
    svc = make(db_path)
    svc.put_agreement(agreement("ab", ["a", "b"], h=5000, v=300, t=600,
                                coarsening=Coarsening(of=["a"], grid_arcmin=30)))
    tracker = Tracker(svc, TrackStore(svc.repo))
    # 40 km east of a-op, 3 km from b's circle: near b, but b sees a-op only as a 30' cell
    assert stray(tracker, 38.15 + 40_000 / M_PER_DEG_LON) == [("nonconforming", ())]
    assert [t.conforming for t in tracker.visible_tracks("a")] == [False]
    assert [t.conforming for t in tracker.visible_tracks("b") if t.party_id == "a"] == [None]
    told_b = [d.payload["alert"]["kind"] for d in svc.repo.list_deliveries("b") if d.reason == "alert"]
    assert "nonconforming" not in told_b


def test_endangered_parties_are_found_on_the_volumes_as_the_owner_is_shown_them(db_path: Path) -> None:
    svc = make(db_path)
    svc.put_agreement(agreement("ab", ["a", "b"], h=5000, v=300, t=600,
                                coarsening=Coarsening(of=["b"], grid_arcmin=30)))
    tracker = Tracker(svc, TrackStore(svc.repo))
    # 38.3 E: 13 km from b's exact circle (beyond 5 NM), inside its coarsened cell 38.0-39.0 E x 35.0-35.5 N
    assert stray(tracker, 38.3) == [("nonconforming", ("b",))]
    assert [t.conforming for t in tracker.visible_tracks("b") if t.party_id == "a"] == [False]
