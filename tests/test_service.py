"""Use cases on a real SQLite file: notices, amendments, state changes, what-if checks, rejections."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from forewarn.core.model import Operation, OperationState, Party, PriorityRule, ProtectedSite
from forewarn.core.resolutions import Resolution
from forewarn.errors import InvalidInput, InvalidTransition, NotFound, StaleVersion
from forewarn.service.notices import Forewarn
from forewarn.service.settings import Settings
from forewarn.store import SQLiteRepository
from tests.builders import agreement, circle, operation, square
from tests.conftest import T0
from tests.oracles_strategic import detect_brute_force

NOW = T0 - timedelta(hours=3)


def make_service(path: Path, **settings: object) -> Forewarn:
    svc = Forewarn(SQLiteRepository(path), Settings(db=path, **settings))  # type: ignore[arg-type]
    for pid, kind in (("x", "military"), ("y", "military"), ("un", "humanitarian")):
        svc.put_party(Party(id=pid, name=pid, kind=kind))  # type: ignore[arg-type]
    svc.put_agreement(agreement("ag", ["x", "y", "un"], h=5000, v=300, t=600))
    return svc


def snapshot(svc: Forewarn) -> tuple[object, ...]:
    repo = svc.repo
    return (repo.list_operations(), repo.list_notices(), repo.list_sites(), repo.list_agreements())


def apply(op: Operation, r: Resolution) -> Operation:
    if r.kind == "time_shift":
        vols = [v.shifted(seconds=r.time_shift_s or 0) for v in op.volumes]
    elif r.kind == "altitude_change":
        vols = [v.shifted(metres=r.altitude_change_m or 0) for v in op.volumes]
    else:
        vols = [v.moved(r.azimuth_deg or 0, r.distance_m or 0) for v in op.volumes]
    return op.model_copy(update={"volumes": vols})


def test_notice_finds_conflict_tells_both_and_proposes_verified_resolutions(db_path: Path) -> None:
    svc = make_service(db_path)
    first = svc.notify(operation("y-op", "y", [circle(38.0, 35.0, 8000, 1000, 5000, 1, 3)]), NOW)
    assert first.conflicts == [] and {i.party_id: i.affected for i in first.impacts} == {"x": False, "un": False}
    out = svc.notify(operation("x-op", "x", [circle(38.05, 35.0, 8000, 2000, 6000, 2, 4)]), NOW + timedelta(minutes=5))
    assert len(out.conflicts) == 1
    c = out.conflicts[0]
    assert (c.a.operation_id, c.b.operation_id) == ("x-op", "y-op")
    assert c.adjusting_operation == "x-op"  # default rule: first notified holds
    assert c.overlap.area_km2 > 50 and c.overlap.altitude_overlap_m == 3000 and c.overlap.time_overlap_s == 3600
    impacts = {i.party_id: i for i in out.impacts}
    assert impacts["y"].affected and "x-op is asked to adjust" in impacts["y"].message
    # both sides see it: the conflict is stored against both operations
    assert [n.outcome.conflicts[0].b.operation_id for n in svc.repo.list_notices("x-op")] == ["y-op"]
    [proposals] = out.resolutions
    kinds = {r.kind for r in proposals.options}
    assert {"time_shift", "altitude_change", "lateral_offset"} <= kinds
    x_op = svc.repo.get_operation("x-op")
    assert x_op is not None
    others = [o for o in svc.repo.list_operations() if o.id != "x-op"]
    for r in proposals.options:
        moved = apply(x_op, r)
        assert detect_brute_force(moved, others, svc.airspace.book, NOW) == [], r.description
    # the smallest later shift is exactly the breakpoint: y ends at 3h + 10 min minimum -> x starts at 3h10
    later = min(r.time_shift_s for r in proposals.options if r.kind == "time_shift" and (r.time_shift_s or 0) > 0)
    assert later == pytest.approx(70 * 60)
    # one minute less would not clear it
    almost = apply(x_op, Resolution(kind="time_shift", operation_id="x-op", time_shift_s=later - 60, verified=False,
                                    description=""))
    assert detect_brute_force(almost, others, svc.airspace.book, NOW) != []


def test_class_ranking_decides_who_adjusts(db_path: Path) -> None:
    svc = make_service(db_path)
    svc.put_agreement(agreement("ag", ["x", "y", "un"], priority=PriorityRule(rule="class_ranking",
                                                                             ranking=["cruise_missile_corridor"])))
    svc.notify(operation("y-op", "y", [circle(38.0, 35.0)], cls="strike_area"), NOW)
    out = svc.notify(operation("x-missile", "x", [circle(38.0, 35.0)], cls="cruise_missile_corridor"), NOW)
    assert out.conflicts[0].adjusting_operation == "y-op"
    assert [r.operation_id for r in out.resolutions] == ["y-op"]
    assert {i.party_id: i.asked_to_adjust for i in out.impacts}["y"] == ["y-op"]


def test_no_resolution_within_bounds_is_said_plainly(db_path: Path) -> None:
    svc = make_service(db_path, max_time_shift_h=0.5, max_lateral_km=1, ceiling_m=5500)
    svc.notify(operation("y-op", "y", [circle(38.0, 35.0, 20000, 0, 5000, 0, 10)]), NOW)
    out = svc.notify(operation("x-op", "x", [circle(38.0, 35.0, 5000, 1000, 4000, 2, 4)], cls="strike_area"), NOW)
    [proposals] = out.resolutions
    assert proposals.options == []
    text = " | ".join(proposals.not_found)
    assert "no later time shift within 0.5 h" in text and "no earlier time shift" in text
    assert "no altitude change up" in text and "no altitude change down" in text
    assert "strike_area stays where it is" in text


def test_protected_site_warns_notifier_and_registrant(db_path: Path) -> None:
    svc = make_service(db_path)
    svc.register_site(ProtectedSite(id="h1", name="Hospital", category="hospital", registered_by="un",
                                    point=(38.0, 35.0), buffer_m=500))
    svc.register_site(ProtectedSite(id="far", name="Camp", registered_by="un", point=(39.0, 36.0), buffer_m=500))
    out = svc.notify(operation("strike", "x", [circle(38.0155, 35.0, 1000)], cls="strike_area"), NOW)
    assert [(w.site_id, w.party_id, w.registered_by) for w in out.site_warnings] == [("h1", "x", "un")]
    assert 0 < out.site_warnings[0].distance_m < 500
    assert {i.party_id: i.affected for i in out.impacts}["un"] is True
    # transport flights over the same place raise nothing
    assert svc.notify(operation("lift", "x", [circle(38.0, 35.0, 1000)]), NOW).site_warnings == []


def test_amendment_versions_and_stale_version(db_path: Path) -> None:
    svc = make_service(db_path)
    svc.notify(operation("op", "x", [circle(38.0, 35.0)]), NOW)
    out = svc.amend("op", 1, "x", NOW, volumes=[circle(40.0, 35.0)])
    assert out.version == 2 and out.kind == "amend"
    assert [v.version for v in svc.repo.operation_versions("op")] == [1, 2]
    with pytest.raises(StaleVersion) as info:
        svc.amend("op", 1, "x", NOW, volumes=[circle(41.0, 35.0)])
    assert info.value.details == {"current_version": 2}
    with pytest.raises(NotFound):  # another party's operation answers like a missing one
        svc.amend("op", 2, "y", NOW, volumes=[circle(41.0, 35.0)])
    # only the latest version takes part in detection
    old_place = svc.check(operation("probe", "y", [circle(38.0, 35.0)]), NOW)
    new_place = svc.check(operation("probe", "y", [circle(40.0, 35.0)]), NOW)
    assert old_place.conflicts == [] and len(new_place.conflicts) == 1


def test_life_cycle_and_transitions(db_path: Path) -> None:
    svc = make_service(db_path)
    svc.notify(operation("op", "x", [circle(38.0, 35.0)]), NOW)
    with pytest.raises(InvalidTransition):
        svc.complete("op", "x", NOW)
    svc.activate("op", "x", NOW)
    assert len(svc.check(operation("probe", "y", [circle(38.0, 35.0)]), NOW).conflicts) == 1
    svc.complete("op", "x", NOW)
    assert svc.repo.get_operation("op").state == OperationState.COMPLETED  # type: ignore[union-attr]
    assert svc.check(operation("probe", "y", [circle(38.0, 35.0)]), NOW).conflicts == []
    with pytest.raises(InvalidTransition):
        svc.cancel("op", "x", NOW)
    with pytest.raises(NotFound):
        svc.cancel("nope", "x", NOW)
    with pytest.raises(InvalidTransition):
        svc.notify(operation("op", "x", [circle(38.0, 35.0)]), NOW)


def test_check_stores_nothing(db_path: Path) -> None:
    svc = make_service(db_path)
    svc.notify(operation("y-op", "y", [circle(38.0, 35.0)]), NOW)
    before = snapshot(svc)
    out = svc.check(operation("plan", "x", [circle(38.0, 35.0)]), NOW)
    assert out.notice_id is None and len(out.conflicts) == 1
    assert snapshot(svc) == before
    assert "plan" not in svc.airspace.operations


def test_index_is_rebuilt_from_the_store_at_start(db_path: Path) -> None:
    svc = make_service(db_path)
    svc.notify(operation("y-op", "y", [circle(38.0, 35.0)]), NOW)
    svc.notify(operation("gone", "y", [circle(39.0, 35.0)]), NOW)
    svc.cancel("gone", "y", NOW)
    fresh = Forewarn(SQLiteRepository(db_path), Settings(db=db_path))
    assert set(fresh.airspace.operations) == {"y-op"}
    probe = operation("probe", "x", [circle(38.0, 35.0)])
    assert fresh.check(probe, NOW).conflicts == svc.check(probe, NOW).conflicts


MALFORMED: list[tuple[str, dict[str, object]]] = [
    ("self-intersecting", {"kind": "polygon", "coordinates": [[38, 35], [39, 36], [39, 35], [38, 36]]}),
    ("NaN", {"kind": "circle", "center": [float("nan"), 35], "radius_m": 1000}),
    ("inf radius", {"kind": "circle", "center": [38, 35], "radius_m": float("inf")}),
    ("two vertices", {"kind": "polygon", "coordinates": [[38, 35], [39, 36], [38, 35]]}),
    ("latitude 95", {"kind": "circle", "center": [38, 95], "radius_m": 1000}),
]


@pytest.mark.parametrize(("name", "footprint"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_volumes_are_rejected_by_the_model(name: str, footprint: dict[str, object]) -> None:
    from pydantic import ValidationError

    from forewarn.geo.volume import Volume4D

    with pytest.raises(ValidationError):
        Volume4D.model_validate({"footprint": footprint, "lower_m": 0, "upper_m": 100,
                                 "start": T0, "end": T0 + timedelta(hours=1)})


def test_rejected_notices_store_nothing(db_path: Path) -> None:
    svc = make_service(db_path, max_area_km2=1000)
    svc.notify(operation("y-op", "y", [circle(38.0, 35.0)]), NOW)
    before = snapshot(svc)
    bad = [
        (operation("huge", "x", [circle(38.0, 35.0, 100_000)]), "exceeds the limit"),
        (operation("far", "x", [circle(38.0, 35.0, start_h=24 * 40, end_h=24 * 40 + 1)]), "planning horizon"),
        (operation("past", "x", [circle(38.0, 35.0, start_h=-10, end_h=-9)]), "before now"),
        (operation("ghost", "nobody", [circle(38.0, 35.0)]), "unknown party"),
        (operation("dateline", "x", [circle(179.99, 35.0)]), "antimeridian"),
        (operation("pole", "x", [square(10, 86, 1)]), "polar limit"),
    ]
    for op, message in bad:
        with pytest.raises(InvalidInput, match=message):
            svc.notify(op, NOW)
    with pytest.raises(InvalidTransition, match=r"not available|amend"):
        svc.plan(operation("y-op", "y", [circle(38.0, 35.0)]), NOW)
    with pytest.raises(InvalidInput, match="timezone-aware"):
        svc.notify(operation("naive", "x", [circle(38.0, 35.0)]), NOW.replace(tzinfo=None))
    assert snapshot(svc) == before
    assert set(svc.airspace.operations) == {"y-op"}


def test_failed_commit_leaves_the_live_picture_unchanged(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    svc = make_service(db_path)
    svc.notify(operation("y-op", "y", [circle(38.0, 35.0)]), NOW)

    def boom(outcome: object) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr(svc.repo, "add_notice", boom)
    with pytest.raises(RuntimeError):
        svc.notify(operation("x-op", "x", [circle(38.0, 35.0)]), NOW)
    monkeypatch.undo()
    assert svc.repo.get_operation("x-op") is None
    assert set(svc.airspace.operations) == {"y-op"}


def test_planned_operation_is_private_until_notified(db_path: Path) -> None:
    svc = make_service(db_path)
    svc.plan(operation("draft", "y", [circle(38.0, 35.0)]), NOW)
    assert svc.check(operation("probe", "x", [circle(38.0, 35.0)]), NOW).conflicts == []
    out = svc.notify(operation("draft", "y", [circle(38.0, 35.0)]), NOW)
    assert out.version == 2
    assert len(svc.check(operation("probe", "x", [circle(38.0, 35.0)]), NOW).conflicts) == 1


def test_late_notice_is_marked_late(db_path: Path) -> None:
    svc = make_service(db_path)
    svc.put_agreement(agreement("ag", ["x", "y", "un"], min_notice_s=3600))
    out = svc.notify(operation("soon", "x", [circle(38.0, 35.0, start_h=0, end_h=2)]), T0 - timedelta(minutes=30))
    assert out.late and out.lead_times[0].lead_time_s == 1800
    on_time = svc.notify(operation("ok", "x", [circle(40.0, 35.0)]), NOW)
    assert not on_time.late
