"""The disclosure gate (forewarn.core.policy) on the service: envelopes, coarsening, conflicts, proposals, deliveries,
exports. The same rules are driven through the real HTTP API in tests/test_policy_api.py."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import shapely

from forewarn.core.airspace import AgreementBook
from forewarn.core.conflicts import describe_conflict, detect
from forewarn.core.deliveries import plan_deliveries
from forewarn.core.model import (
    Agreement,
    Coarsening,
    Operation,
    OperationState,
    Party,
    PlanningDetail,
    PriorityRule,
    SeparationMinima,
)
from forewarn.core.policy import (
    WITHHELD_PROPOSALS,
    coarse_overlay,
    coarsening_for,
    view_delivery,
    view_operation,
    view_outcome,
)
from forewarn.core.resolutions import ResolutionBounds
from forewarn.geo import geodesy
from forewarn.geo.coarsen import coarsen_volume
from forewarn.service.notices import Forewarn
from forewarn.service.settings import Settings
from forewarn.service.situation import situation
from forewarn.store import SQLiteRepository
from forewarn.web.mapview import render_situation_html
from tests.builders import circle, operation
from tests.conftest import T0

NOW = T0 - timedelta(hours=3)
MINIMA = SeparationMinima(horizontal_m=5000, vertical_m=300, time_s=600)
COARSE = Coarsening(of=["rus"], grid_arcmin=6, altitude_step_ft=1000, time_step_s=900)
# distinctive exact figures: none of them on a 6' grid, a 1,000 ft step or a quarter hour
RUS_VOLUME = circle(38.0123, 35.0117, radius_m=7000, lower=1234.5, upper=4321.5, start_h=1.1234, end_h=2.8765)


@pytest.fixture
def svc(db_path: Path) -> Forewarn:
    s = Forewarn(SQLiteRepository(db_path), Settings(db=db_path))
    for pid in ("usa", "rus", "fra", "loner"):
        s.put_party(Party(id=pid, name=pid.upper()))
    s.put_agreement(Agreement(id="mou", name="MoU", parties=["usa", "rus", "fra"], default_minima=MINIMA,
                              coarsening=COARSE, priority=PriorityRule(rule="class_ranking",
                                                                       ranking=["cruise_missile_corridor"])))
    s.put_agreement(Agreement(id="usa-fra", name="sharing", parties=["usa", "fra"], default_minima=MINIMA,
                              sharing="planning_detail", released_fields={"purpose": ["fra"], "notes": ["usa"]}))
    return s


def exact_numbers(op: Operation) -> set[float]:
    """Every coordinate and altitude of ``op``'s exact volumes and of their built shapes."""
    out: set[float] = set()
    for v in op.volumes:
        out |= {v.lower_m, v.upper_m}
        out |= {c for xy in v.shape.exterior.coords for c in xy}
    return out


def numbers_in(doc: object) -> set[float]:
    if isinstance(doc, dict):
        return set().union(*(numbers_in(v) for v in doc.values())) if doc else set()
    if isinstance(doc, list | tuple):
        return set().union(*(numbers_in(v) for v in doc)) if doc else set()
    if isinstance(doc, int | float) and not isinstance(doc, bool):
        return {float(doc)}
    return set()


def test_coarsened_envelope_for_the_other_side_exact_for_the_owner_and_the_uncoarsened(svc: Forewarn) -> None:
    rus = operation("rus-op", "rus", [RUS_VOLUME])
    svc.notify(rus, NOW)
    stored = svc.repo.get_operation("rus-op")
    assert stored is not None
    book = svc.airspace.book
    as_usa = view_operation("usa", stored, book)
    as_rus = view_operation("rus", stored, book)
    assert as_usa is not None and as_rus is not None
    assert as_rus["volumes"] == stored.model_dump(mode="json")["volumes"]
    [shown] = as_usa["volumes"]
    assert shown["footprint"]["kind"] == "polygon" and as_usa["coarsening"]["grid_arcmin"] == 6
    assert not exact_numbers(stored) & numbers_in(as_usa)
    assert shapely.Polygon(shown["footprint"]["coordinates"]).covers(RUS_VOLUME.shape)
    assert shown["lower_m"] <= RUS_VOLUME.lower_m and shown["upper_m"] >= RUS_VOLUME.upper_m
    for key in ("start", "end"):
        assert datetime.fromisoformat(shown[key]).timestamp() % 900 == 0  # quarter hours
    assert datetime.fromisoformat(shown["start"]) <= RUS_VOLUME.start
    # usa's operations are not coarsened for rus (the agreement coarsens rus only)
    usa = operation("usa-op", "usa", [circle(30.0, 30.0)])
    view = view_operation("rus", usa, book)
    assert view is not None and view["volumes"] == usa.model_dump(mode="json")["volumes"] and "coarsening" not in view
    # no agreement: nothing; planned: nothing for the others, everything for the owner
    assert view_operation("loner", stored, book) is None
    planned = operation("rus-plan", "rus", [RUS_VOLUME]).model_copy(update={"state": OperationState.PLANNED})
    assert view_operation("usa", planned, book) is None and view_operation("rus", planned, book) is not None


def test_the_coarsest_setting_of_the_binding_agreements_applies() -> None:
    book = AgreementBook([
        Agreement(id="a", name="a", parties=["x", "y"], coarsening=Coarsening(grid_arcmin=5, time_step_s=900)),
        Agreement(id="b", name="b", parties=["x", "y", "z"],
                  coarsening=Coarsening(of=["y"], grid_arcmin=10, altitude_step_ft=500)),
        Agreement(id="c", name="c", parties=["x", "z"]),
    ])
    c = coarsening_for("x", "y", book)
    assert c is not None and (c.grid_arcmin, c.time_step_s, c.altitude_step_ft) == (10, 900, 500)
    only_a = coarsening_for("y", "x", book)  # b coarsens y only
    assert only_a is not None and (only_a.grid_arcmin, only_a.altitude_step_ft) == (5, 0)
    assert coarsening_for("x", "z", book) is None and coarsening_for("y", "y", book) is None


def test_filer_sees_conflict_figures_measured_against_the_coarsened_side_only(svc: Forewarn) -> None:
    svc.notify(operation("rus-op", "rus", [RUS_VOLUME], cls="cruise_missile_corridor"), NOW)
    usa = operation("usa-op", "usa", [circle(38.05, 35.02, radius_m=6000)])
    outcome = svc.notify(usa, NOW + timedelta(minutes=1))
    [exact] = outcome.conflicts
    stored_usa = svc.repo.get_operation("usa-op")
    rus = svc.repo.get_operation("rus-op")
    assert stored_usa is not None and rus is not None
    shown = view_outcome("usa", outcome, stored_usa, svc.airspace.book, svc.airspace, ResolutionBounds(),
                         svc.repo.get_operation)
    [c] = shown.conflicts
    coarse = coarsen_volume(RUS_VOLUME, COARSE)
    inter = usa.volumes[0].shape.intersection(coarse.shape)
    # the slow obvious figures, from the coarsened volume
    assert c.overlap.area_km2 == pytest.approx(geodesy.geodesic_area_m2(inter) / 1e6, rel=1e-9)
    assert c.overlap.area_km2 > exact.overlap.area_km2
    assert inter.covers(shapely.Point(c.overlap.point))
    assert c.overlap.altitude_overlap_m == min(coarse.upper_m, 5000) - max(coarse.lower_m, 1000)
    assert c.overlap.time_overlap_s == pytest.approx(
        min(coarse.end_s, usa.volumes[0].end_s) - max(coarse.start_s, usa.volumes[0].start_s))
    assert (c.a, c.b, c.adjusting_operation) == (exact.a, exact.b, exact.adjusting_operation)
    same = describe_conflict(stored_usa, 0, stored_usa.volumes[0], stored_usa.volumes[0].shape, rus, 0, coarse,
                             coarse.shape, c.minima, svc.airspace.book.get("mou"), None)  # type: ignore[arg-type]
    assert same.overlap == c.overlap and same.separation == c.separation
    assert not exact_numbers(rus) & numbers_in(shown.model_dump(mode="json")["conflicts"])


def test_proposals_for_the_filer_are_recomputed_against_the_coarsened_picture(svc: Forewarn) -> None:
    svc.notify(operation("rus-op", "rus", [RUS_VOLUME], cls="cruise_missile_corridor"), NOW)
    usa = operation("usa-op", "usa", [circle(38.05, 35.02, radius_m=6000)])
    outcome = svc.notify(usa, NOW + timedelta(minutes=1))
    stored = svc.repo.get_operation("usa-op")
    assert stored is not None and [r.operation_id for r in outcome.resolutions] == ["usa-op"]
    shown = view_outcome("usa", outcome, stored, svc.airspace.book, svc.airspace, ResolutionBounds())
    [proposals] = shown.resolutions
    later = next(o for o in proposals.options if o.kind == "time_shift" and (o.time_shift_s or 0) > 0)
    exact_later = next(o for o in outcome.resolutions[0].options if o.kind == "time_shift"
                       and (o.time_shift_s or 0) > 0)
    coarse = coarsen_volume(RUS_VOLUME, COARSE)
    # the shift clears the coarsened window (so it says nothing finer than a quarter hour about the exact one)
    assert stored.volumes[0].start_s + (later.time_shift_s or 0) >= coarse.end_s + MINIMA.time_s
    assert (later.time_shift_s or 0) > (exact_later.time_shift_s or 0)
    overlay = coarse_overlay("usa", stored, svc.airspace, [], ResolutionBounds())
    for option in proposals.options:
        moved = stored
        if option.kind == "time_shift":
            moved = stored.model_copy(update={"volumes": [v.shifted(seconds=option.time_shift_s or 0)
                                                          for v in stored.volumes]})
        elif option.kind == "altitude_change":
            moved = stored.model_copy(update={"volumes": [v.shifted(metres=option.altitude_change_m or 0)
                                                          for v in stored.volumes]})
        else:
            moved = stored.model_copy(update={"volumes": [v.moved(option.azimuth_deg or 0, option.distance_m or 0)
                                                          for v in stored.volumes]})
        assert detect(moved, svc.airspace, None) == [], option  # clears the exact picture
        assert detect(moved, overlay, None) == [], option  # and the coarsened one it was computed from
    # without the live picture: withheld, not computed from the exact volumes
    withheld = view_outcome("usa", outcome, stored, svc.airspace.book)
    assert withheld.resolutions[0].options == [] and withheld.resolutions[0].not_found == [WITHHELD_PROPOSALS]


def test_filer_never_sees_proposals_for_another_partys_operation(svc: Forewarn) -> None:
    svc.notify(operation("usa-op", "usa", [circle(38.05, 35.02, radius_m=6000)], cls="cruise_missile_corridor"),
               NOW)
    rus = operation("rus-op", "rus", [RUS_VOLUME])
    outcome = svc.notify(rus, NOW + timedelta(minutes=1))
    assert [r.operation_id for r in outcome.resolutions] == ["rus-op"]
    stored_rus = svc.repo.get_operation("rus-op")
    assert stored_rus is not None
    assert view_outcome("rus", outcome, stored_rus, svc.airspace.book, svc.airspace).resolutions[0].options
    # the same notice from usa's side: usa-op holds, rus-op adjusts; usa is shown rus's operation coarsened
    usa_outcome = svc.check(operation("usa-op", "usa", [circle(38.05, 35.02, radius_m=6000)],
                                      cls="cruise_missile_corridor"), NOW + timedelta(minutes=2))
    usa_op = operation("usa-op", "usa", [circle(38.05, 35.02, radius_m=6000)], cls="cruise_missile_corridor")
    shown = view_outcome("usa", usa_outcome, usa_op, svc.airspace.book, svc.airspace)
    assert all(r.operation_id == "usa-op" for r in shown.resolutions)
    with pytest.raises(ValueError, match="only to the party that filed it"):
        view_outcome("fra", usa_outcome, usa_op, svc.airspace.book)


def test_deliveries_show_the_notifier_coarsened_and_proposals_from_the_coarsened_picture(svc: Forewarn) -> None:
    svc.notify(operation("usa-op", "usa", [circle(38.05, 35.02, radius_m=6000)]), NOW)
    rus = operation("rus-op", "rus", [RUS_VOLUME], cls="cruise_missile_corridor",
                    detail=PlanningDetail(purpose="RUS-SECRET-PURPOSE"))
    outcome = svc.notify(rus, NOW + timedelta(minutes=1))
    stored = svc.repo.get_operation("rus-op")
    assert stored is not None
    [to_usa] = [d for d in svc.repo.list_deliveries("usa") if d.payload["from_party"] == "rus"]
    payload = to_usa.payload
    assert payload["operation"]["coarsening"] and "detail" not in payload["operation"]
    assert not exact_numbers(stored) & numbers_in(payload)
    assert "RUS-SECRET-PURPOSE" not in str(payload)
    # the service plans deliveries with the live picture: usa's proposals are recomputed against the coarsened
    # notice, verified, and carry no exact number of it
    [r] = payload["resolutions"]
    assert r["operation_id"] == "usa-op" and r["options"] and all(o["verified"] for o in r["options"])
    assert WITHHELD_PROPOSALS not in r["not_found"]
    # planned without the live picture they are withheld; with it (below) recomputed as the service does
    svc.airspace.remove("rus-op")
    parties = {p.id: p for p in svc.repo.list_parties()}
    [blind] = [d for d in plan_deliveries(outcome, stored, svc.airspace.book, parties, [], NOW) if d.party_id == "usa"]
    [withheld] = blind.payload["resolutions"]
    assert withheld["options"] == [] and withheld["not_found"] == [WITHHELD_PROPOSALS]
    parties = {p.id: p for p in svc.repo.list_parties()}
    planned = plan_deliveries(outcome, stored, svc.airspace.book, parties, [], NOW, svc.airspace, ResolutionBounds())
    [again] = [d for d in planned if d.party_id == "usa"]
    [r2] = again.payload["resolutions"]
    assert r2["options"] and all(o["verified"] for o in r2["options"])
    assert not exact_numbers(stored) & numbers_in(again.payload)
    # fra is bound by the same coarsening MoU: coarsened too; loner gets nothing
    assert {d.party_id for d in planned} == {"usa", "fra"}


def test_inbox_view_withholds_what_the_agreements_no_longer_allow(svc: Forewarn) -> None:
    detail = PlanningDetail(purpose="USA-PURPOSE", notes="USA-NOTES")
    svc.notify(operation("usa-op", "usa", [circle(30.0, 30.0)], detail=detail), NOW)
    [to_fra] = svc.repo.list_deliveries("fra")
    book = svc.airspace.book
    assert view_delivery("fra", to_fra, book) == to_fra and to_fra.payload["operation"]["detail"] == {
        "purpose": "USA-PURPOSE"}
    assert view_delivery("rus", to_fra, book) is None
    svc.put_agreement(Agreement(id="usa-fra", name="sharing", parties=["usa", "fra"], default_minima=MINIMA,
                                sharing="safety_envelope"))
    svc.put_agreement(Agreement(id="mou", name="MoU", parties=["usa", "rus", "fra"], default_minima=MINIMA,
                                coarsening=Coarsening(grid_arcmin=30)))
    now_shown = view_delivery("fra", to_fra, svc.airspace.book)
    assert now_shown is not None
    op = now_shown.payload["operation"]
    assert "detail" not in op and op["coarsening"]["grid_arcmin"] == 30
    assert op["volumes"][0]["footprint"]["kind"] == "polygon"
    assert "USA-PURPOSE" not in str(now_shown.model_dump())


def test_export_as_a_party(svc: Forewarn) -> None:
    svc.notify(operation("rus-op", "rus", [RUS_VOLUME], cls="cruise_missile_corridor"), NOW)
    svc.notify(operation("usa-op", "usa", [circle(38.05, 35.02, radius_m=6000)]), NOW + timedelta(minutes=1))
    svc.notify(operation("fra-op", "fra", [circle(10.0, 10.0)]), NOW + timedelta(minutes=2))
    rus = svc.repo.get_operation("rus-op")
    assert rus is not None
    whole = situation(svc.repo)
    assert any(f["properties"]["kind"] == "conflict" for f in whole["features"])
    as_usa = situation(svc.repo, viewer="usa", book=svc.airspace.book)
    volumes = [f for f in as_usa["features"] if f["properties"]["kind"] == "volume"]
    assert {f["properties"]["operation_id"] for f in volumes} == {"rus-op", "usa-op", "fra-op"}
    assert [f["properties"].get("coarsened") for f in volumes if f["properties"]["party_id"] == "rus"] == [True]
    assert not exact_numbers(rus) & numbers_in(as_usa)
    [conflict] = [f for f in as_usa["features"] if f["properties"]["kind"] == "conflict"]
    assert conflict["properties"]["resolution"]  # usa adjusts: its own proposals (withheld: no live picture)
    page = render_situation_html(as_usa, title="as usa")
    assert "rounded outward by an agreement" in page and "rounded outward" not in render_situation_html(
        situation(svc.repo, viewer="rus", book=svc.airspace.book), title="as rus")  # rus sees usa exact
    as_fra = situation(svc.repo, viewer="fra", book=svc.airspace.book)
    assert not [f for f in as_fra["features"] if f["properties"]["kind"] == "conflict"]  # not a side of it
    assert situation(svc.repo, viewer="loner")["features"] == []


def test_cli_list_and_export_as_a_party(svc: Forewarn, db_path: Path) -> None:
    from typer.testing import CliRunner

    from forewarn.cli.main import app

    svc.notify(operation("rus-op", "rus", [RUS_VOLUME], detail=PlanningDetail(notes="RUS-NOTES")), NOW)
    rus = svc.repo.get_operation("rus-op")
    assert rus is not None
    runner = CliRunner()
    listed = runner.invoke(app, ["list", "operations", "--db", str(db_path), "--as", "usa", "--json"])
    assert listed.exit_code == 0, listed.output
    [view] = json.loads(listed.output)
    assert view["coarsening"] and "RUS-NOTES" not in listed.output
    assert not exact_numbers(rus) & numbers_in(view)
    as_loner = runner.invoke(app, ["export", "--db", str(db_path), "--as", "loner"])
    assert as_loner.exit_code == 0 and json.loads(as_loner.output)["features"] == []
    operator = runner.invoke(app, ["list", "operations", "--db", str(db_path), "--json"])
    assert "RUS-NOTES" in operator.output  # the operator's view on the database file: everything
    refused = runner.invoke(app, ["list", "parties", "--db", str(db_path), "--as", "usa"])
    assert refused.exit_code != 0


def test_api_filters_and_what_if_checks_work_on_what_the_caller_is_shown(tmp_path: Path) -> None:
    from tests.api_support import make_world, volume

    world = make_world(tmp_path)
    zero = SeparationMinima(horizontal_m=0, vertical_m=0, time_s=0)
    world.service.put_agreement(Agreement(id="mou", name="MoU", parties=["usa", "rus", "fra"], default_minima=zero,
                                          coarsening=Coarsening(of=["rus"], grid_arcmin=30, time_step_s=900)))
    c, usa = world.client, world.auth("usa")
    exact = volume(38.1, 35.1, radius_m=2000) | {"start": (T0 + timedelta(hours=1, minutes=7)).isoformat()}
    r = c.post("/v1/operations", headers=world.auth("rus"), json={"id": "rus-1", "activity_class": "strike_area",
                                                                  "volumes": [exact]})
    assert r.status_code == 201, r.text
    # shown to usa: the 30' cell [38.0, 38.5] x [35.0, 35.5], from 01:00; the filters answer on that, so that
    # no sequence of queries can narrow the exact circle or start time down
    listed = c.get("/v1/operations", headers=usa, params={"bbox": "38.3,35.3,38.4,35.4"}).json()
    assert [o["id"] for o in listed] == ["rus-1"]
    before = (T0 + timedelta(hours=1, minutes=3)).isoformat()
    assert [o["id"] for o in c.get("/v1/operations", headers=usa, params={"end": before}).json()] == ["rus-1"]
    assert c.get("/v1/operations", headers=usa, params={"bbox": "38.6,35.3,38.7,35.4"}).json() == []
    # a what-if probe far from the exact circle but inside the coarsened cell conflicts, as the shown picture says
    probe = {"activity_class": "transport", "volumes": [volume(38.35, 35.35, radius_m=1000)]}
    out = c.post("/v1/check", headers=usa, json=probe).json()
    assert [x["b"]["operation_id"] for x in out["conflicts"]] == ["rus-1"]
    [rus_impact] = [i for i in out["impacts"] if i["party_id"] == "rus"]
    assert rus_impact["affected"] and rus_impact["conflicts"] == 1
    assert out["resolutions"] and out["resolutions"][0]["operation_id"] == "what-if"
    far = c.post("/v1/check", headers=usa, json=probe | {"volumes": [volume(39.2, 36.2, radius_m=1000)]}).json()
    assert far["conflicts"] == [] and far["resolutions"] == []
    # rus sees usa exactly (the agreement coarsens rus only): its own checks are detected on exact volumes
    c.post("/v1/operations", headers=usa, json={"id": "usa-1", "activity_class": "transport",
                                                "volumes": [volume(38.9, 35.9, radius_m=2000)]})
    near = c.post("/v1/check", headers=world.auth("rus"), json={
        "activity_class": "transport", "volumes": [volume(38.9 + 0.04, 35.9, radius_m=1000)]}).json()
    assert near["conflicts"] == []  # 3.6 km apart, 3 km of radii: no conflict on the exact volumes
