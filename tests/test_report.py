"""The daily report: figures checked against the store with independent SQL, the disclosure policy in party
reports, the coarse regions, the CLI and the HTTP routes."""

from __future__ import annotations

import html
import json
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import escape
from typer.testing import CliRunner

from forewarn.cli.main import app
from forewarn.core.airspace import AgreementBook
from forewarn.core.model import Agreement, Operation, Party, PlanningDetail, ProtectedSite
from forewarn.core.policy import view_operation
from forewarn.core.records import Delivery
from forewarn.geo.volume import Volume4D
from forewarn.report import Report, gather, make_report, render_html, write_report
from forewarn.report.regions import _TABLE, OTHER, primary_region, region_shares, regions
from forewarn.service.desk import DeliveryDesk
from forewarn.service.notices import Forewarn
from forewarn.service.scenario import builtin_scenario, load_scenario
from forewarn.service.settings import Settings
from forewarn.store import SQLiteRepository
from tests.api_support import make_world, volume

DAY = date(2015, 11, 17)
DAY_START = datetime(2015, 11, 17, tzinfo=UTC)
DAY_END = DAY_START + timedelta(days=1)


def at(h: int, m: int = 0) -> datetime:
    return DAY_START + timedelta(hours=h, minutes=m)


def circle_volume(lon: float, lat: float, start: datetime, end: datetime, radius_m: float = 10_000) -> Volume4D:
    return Volume4D.model_validate({"footprint": {"kind": "circle", "center": [lon, lat], "radius_m": radius_m},
                                    "lower_m": 3000, "upper_m": 6000, "start": start, "end": end})


def alert_delivery(alert: dict[str, Any], party: str) -> Delivery:
    return Delivery(id=f"{alert['id']}-{party}", notice_id=None, party_id=party, reason="alert",
                    payload={"type": "alert", "alert": alert}, created_at=datetime.fromisoformat(alert["at"]))


ALERTS: list[tuple[dict[str, Any], list[str]]] = [
    ({"id": "al-1", "kind": "nonconforming", "at": "2015-11-17T06:10:00+00:00", "track_id": "ru-kh101-1",
      "party_id": "russia", "operation_id": "ru-kalibr-raqqa", "message": "left its corridor"},
     ["russia", "coalition", "france"]),
    ({"id": "al-2", "kind": "predicted_conflict", "at": "2015-11-17T05:40:00+00:00", "track_id": "rafale11",
      "party_id": "france", "operation_id": "fr-package-raqqa", "other_party_id": "russia",
      "min_distance_m": 4200.0, "message": "loss of separation predicted"}, ["france", "russia"]),
    ({"id": "al-3", "kind": "intrusion", "at": "2015-11-17T07:00:00+00:00", "track_id": "snoop21-track",
      "party_id": "coalition", "operation_id": "co-isr-deir-ez-zor", "message": "inside a volume"}, ["coalition"]),
    ({"id": "al-4", "kind": "predicted_entry", "at": "2015-11-18T01:00:00+00:00", "track_id": "ru-kh101-2",
      "party_id": "russia", "operation_id": "ru-kalibr-raqqa", "message": "next day"}, ["russia", "coalition"]),
]


@dataclass
class Store:
    db: Path
    repo: SQLiteRepository

    def sql(self, query: str, *params: object) -> list[tuple[Any, ...]]:
        with closing(sqlite3.connect(self.db)) as conn:
            return conn.execute(query, params).fetchall()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """The built-in scenario, then a day of follow-up: acknowledgements (in time and late), an escalation pass,
    the French package moved by the proposed time shift, a late coalition notice, a coalition plan never
    notified, a notice of the party with no agreement, and alerts (one of them on the next day)."""
    db = tmp_path_factory.mktemp("report") / "day.sqlite"
    repo = SQLiteRepository(db)
    service = Forewarn(repo, Settings(db=db))
    load_scenario(service, builtin_scenario("raqqa-2015"))
    desk = DeliveryDesk(service)
    for d in repo.list_deliveries("coalition"):
        desk.acknowledge(d.id, "coalition", at(3, 5))
    bomber = next(d for d in repo.list_deliveries("france")
                  if d.payload.get("type") == "notice" and d.payload["operation"]["id"] == "ru-bombers-raqqa")
    desk.acknowledge(bomber.id, "france", at(3, 20))
    desk.escalate_overdue(at(3, 16))
    package = repo.get_operation("fr-package-raqqa")
    assert package is not None
    shifted = [v.model_copy(update={"start": v.start + timedelta(hours=3, minutes=40),
                                    "end": v.end + timedelta(hours=3, minutes=40)}) for v in package.volumes]
    service.amend("fr-package-raqqa", 1, "france", at(3, 30), volumes=shifted)
    service.notify(Operation(id="co-late-isr", party_id="coalition", activity_class="isr_orbit",
                             volumes=[circle_volume(43.6, 35.5, at(10, 30), at(12))],
                             detail=PlanningDetail(unit="late ISR cell", call_signs=["LATE01"])), at(10))
    service.plan(Operation(id="co-planned-secret", party_id="coalition", activity_class="strike_area",
                           volumes=[circle_volume(40.5, 35.0, at(14), at(15))],
                           detail=PlanningDetail(purpose="PLANNED-ONLY-PURPOSE")), at(3))
    service.notify(Operation(id="obs-survey", party_id="observer", activity_class="transport",
                             volumes=[circle_volume(38.0, 36.5, at(6), at(8))],
                             detail=PlanningDetail(unit="OBSERVER-UNIT")), at(4))
    with repo.transaction():
        repo.add_deliveries([alert_delivery(a, p) for a, parties in ALERTS for p in parties])
    yield Store(db=db, repo=repo)
    repo.close()


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def day_notice_ids(store: Store) -> set[int]:
    """Notices filed in the day or whose notified volumes meet it (plain SQL over notices + versions)."""
    rows = store.sql("SELECT n.id, n.at, v.start_s, v.end_s FROM notices n JOIN operation_versions v "
                     "ON v.operation_id = n.operation_id AND v.version = n.version")
    lo, hi = DAY_START.timestamp(), DAY_END.timestamp()
    return {i for i, t, s, e in rows if lo <= _epoch(t) < hi or (s < hi and e > lo)}


def rows(report: Report, table: str) -> list[dict[str, Any]]:
    return report.tables[table].rows


# ---------------------------------------------------------------------------------------------- operator's figures
def test_notices_and_lead_times_match_the_store(store: Store) -> None:
    report = make_report(store.repo, DAY)
    ids = day_notice_ids(store)
    assert {r["notice_id"] for r in rows(report, "notices")} == ids
    assert report.summary["notices"] == len(ids)
    minimum = {p: m for p, m in store.sql(
        "SELECT ap.party_id, max(json_extract(a.doc, '$.min_notice_s')) FROM agreement_parties ap "
        "JOIN agreements a ON a.id = ap.agreement_id GROUP BY ap.party_id")}
    late = set()
    for nid, kind, party, t, start in store.sql(
            "SELECT n.id, n.kind, n.party_id, n.at, v.start_s FROM notices n JOIN operation_versions v "
            "ON v.operation_id = n.operation_id AND v.version = n.version"):
        if nid in ids and kind in ("notify", "amend") and party in minimum and start - _epoch(t) < minimum[party]:
            late.add(nid)
    assert late, "the fixture files one late notice"
    assert {r["notice_id"] for r in rows(report, "notices") if r["late"]} == late
    assert report.summary["notices_late"] == len(late)
    by_id = {r["notice_id"]: r for r in rows(report, "notices")}
    for nid, t, start in store.sql("SELECT n.id, n.at, v.start_s FROM notices n JOIN operation_versions v "
                                   "ON v.operation_id = n.operation_id AND v.version = n.version "
                                   "WHERE n.kind IN ('notify', 'amend')"):
        if nid in ids:
            assert by_id[nid]["lead_time_s"] == pytest.approx(start - _epoch(t))


def test_conflicts_resolutions_and_site_warnings_match_the_store(store: Store) -> None:
    report = make_report(store.repo, DAY)
    ids = day_notice_ids(store)
    found = [(n, a, b, adj) for n, a, b, adj in store.sql(
        "SELECT notice_id, operation_a, operation_b, adjusting_operation FROM conflicts") if n in ids]
    assert len(found) >= 2
    table = rows(report, "conflicts")
    assert sorted((r["notice_id"], r["operation_a"], r["operation_b"], r["adjusting_operation"]) for r in table) \
        == sorted(found)
    assert report.summary["conflicts"] == len(found)
    # the French package was moved by the proposed shift: amended, and its amendment meets neither Russian op
    version, state = store.sql("SELECT version, state FROM operations WHERE id = 'fr-package-raqqa'")[0]
    amend_id = store.sql("SELECT id FROM notices WHERE operation_id = 'fr-package-raqqa' AND kind = 'amend'")[0][0]
    still = store.sql("SELECT count(*) FROM conflicts WHERE notice_id = ?", amend_id)[0][0]
    assert version == 2 and state == "notified" and still == 0
    for r in table:
        assert r["adjusting_operation"] == "fr-package-raqqa"
        assert r["outcome"] == f"fr-package-raqqa amended to v2 (notice {amend_id}): conflict cleared"
        assert "move later by 3 h 40 min" in str(r["proposals"])
    assert report.summary["conflicts_adjusted"] == len(table)
    warnings = [(n, s, o) for n, s, o in store.sql("SELECT notice_id, site_id, operation_id FROM site_warnings")
                if n in ids]
    assert len(warnings) == 4
    assert sorted((r["notice_id"], r["site_id"], r["operation_id"]) for r in rows(report, "site_warnings")) \
        == sorted(warnings)


def test_acknowledgements_and_escalations_match_the_store(store: Store) -> None:
    report = make_report(store.repo, DAY)
    ids = day_notice_ids(store)
    primary = [r for r in store.sql(
        "SELECT id, notice_id, created_at, acked_at, ack_deadline, escalated_at FROM deliveries "
        "WHERE channel = 'primary' AND json_extract(payload, '$.type') != 'alert'") if r[1] in ids]
    table = {r["delivery_id"]: r for r in rows(report, "acknowledgements")}
    assert set(table) == {r[0] for r in primary}
    acked = [r for r in primary if r[3] is not None]
    assert acked and len(acked) < len(primary)
    assert report.summary["acknowledged"] == len(acked)
    assert report.summary["not_acknowledged"] == len(primary) - len(acked)
    in_time = sum(1 for r in acked if r[3] <= r[4])
    assert 0 < in_time < len(acked), "the fixture acknowledges some in time and some late"
    assert report.summary["acknowledged_in_time"] == in_time
    for d_id, _, created, acked_at, _, _ in acked:
        assert table[d_id]["ack_time_s"] == pytest.approx(_epoch(acked_at) - _epoch(created))
    escalated = {r[0] for r in primary if r[5] is not None}
    assert escalated
    esc = rows(report, "escalations")
    assert {r["delivery_id"] for r in esc} == escalated
    for r in esc:
        assert r["backup_delivery_id"] == store.sql("SELECT id FROM deliveries WHERE escalation_of = ?",
                                                    r["delivery_id"])[0][0]


def test_alerts_of_the_day(store: Store) -> None:
    report = make_report(store.repo, DAY)
    alerts = store.sql("SELECT DISTINCT json_extract(payload, '$.alert.id'), json_extract(payload, '$.alert.kind'),"
                       " json_extract(payload, '$.alert.at') FROM deliveries "
                       "WHERE json_extract(payload, '$.type') = 'alert'")
    today = {(k, a) for _, k, a in alerts if DAY_START <= datetime.fromisoformat(a) < DAY_END}
    assert len(today) == 3 and len(alerts) == 4
    assert {(r["kind"], r["at"]) for r in rows(report, "alerts")} == today
    kinds = [k for k, _ in today]
    assert report.summary["conformance_incidents"] == sum(k in ("nonconforming", "intrusion") for k in kinds) == 2
    assert report.summary["predicted_conflicts"] == kinds.count("predicted_conflict")
    assert report.summary["predicted_entries"] == kinds.count("predicted_entry")
    assert report.summary["predicted_conflicts"] + report.summary["predicted_entries"] == 1
    al1 = next(r for r in rows(report, "alerts") if r["kind"] == "nonconforming")
    assert al1["recipients"] == "coalition; france; russia"
    assert not any("no alert deliveries" in n for n in report.notes)


def test_activity_by_party_class_and_region(store: Store) -> None:
    report = make_report(store.repo, DAY)
    lo, hi = DAY_START.timestamp(), DAY_END.timestamp()
    live = store.sql("SELECT o.id, o.party_id, o.activity_class, v.doc FROM operations o JOIN operation_versions v "
                     "ON v.operation_id = o.id AND v.version = o.version WHERE o.notified_at IS NOT NULL "
                     "AND o.state != 'cancelled' AND v.start_s < ? AND v.end_s > ?", hi, lo)
    assert sum(int(r["operations"]) for r in rows(report, "activity")) == len(live)
    region = {r["operation_id"]: r["region"] for r in rows(report, "volumes")}
    for op_id, _, _, doc in live:
        footprint = json.loads(doc)["volumes"][0]["footprint"]
        # a crude independent rule, valid far from borders: west of 41 E is Syria, east of 41.6 E Iraq
        lon = footprint["path"][-1][0] if footprint["kind"] == "corridor" else (
            footprint["center"][0] if footprint["kind"] == "circle" else footprint["coordinates"][0][0])
        lat = footprint["path"][-1][1] if footprint["kind"] == "corridor" else (
            footprint["center"][1] if footprint["kind"] == "circle" else footprint["coordinates"][0][1])
        if 34.5 < lat < 37:
            assert region[op_id] == ("Syria" if lon < 41.0 else "Iraq" if lon > 41.6 else region[op_id]), op_id
    strikes: dict[str, int] = {}
    for r in rows(report, "activity"):
        if r["activity_class"] == "strike_area":
            strikes[r["region"]] = strikes.get(r["region"], 0) + r["operations"]
    assert strikes.get("Syria") == 2 and strikes.get("Iraq") == 1
    assert "co-planned-secret" not in region


def test_first_use_is_flagged_on_the_day_it_happened(store: Store) -> None:
    parties_of: dict[str, set[str]] = {}
    for ag, party in store.sql("SELECT agreement_id, party_id FROM agreement_parties"):
        parties_of.setdefault(party, set()).add(ag)
    first = {p: t for p, t in store.sql("SELECT party_id, min(at) FROM notices WHERE kind = 'notify' "
                                        "GROUP BY party_id")}
    for day in (date(2015, 11, 16), DAY):
        expected = {(ag, p) for p, t in first.items() if datetime.fromisoformat(t).date() == day
                    for ag in parties_of.get(p, ())}
        report = make_report(store.repo, day)
        assert {(r["agreement_id"], r["party_id"]) for r in rows(report, "first_use")} == expected
    # the seed: 17 Nov 2015 was Russia's first use of the pre-strike notification mechanism
    assert ("mou-coalition-russia", "russia") in {
        (r["agreement_id"], r["party_id"]) for r in rows(make_report(store.repo, DAY), "first_use")}
    flagged = [r for r in rows(make_report(store.repo, date(2015, 11, 16)), "first_use")]
    assert flagged and all(r["first_for_agreement"] for r in flagged)
    # issue 18: a first use that is not the agreement's first says whose was, and when
    opener = {r["agreement_id"]: f"{r['party_id']} at {r['at']}" for r in flagged}
    for r in rows(make_report(store.repo, DAY), "first_use"):
        assert not r["first_for_agreement"] and r["agreement_first_used"] == opener[r["agreement_id"]]


def test_headline_figures_are_labelled_for_people(store: Store, tmp_path: Path) -> None:
    """Issue 18: the HTML headline shows readable labels (not raw keys) and a median with no acknowledgement says
    so instead of an empty cell; wide tables scroll inside the page."""
    report = make_report(store.repo, DAY)
    page = render_html(report)
    headline = page.split('<table class="summary">', 1)[1].split("</table>", 1)[0]
    assert "notices_late" not in headline and "median_ack_time_s" not in headline
    assert "<td>notices later than the agreed minimum</td>" in headline
    if report.summary["median_ack_time_s"] is None:
        assert "<td>median time to acknowledge</td><td>none acknowledged</td>" in headline
    else:
        assert re.search(r"<td>median time to acknowledge</td><td>\d+ (min \d\d )?s</td>", headline)
    assert page.count('<div class="wide"><table>') == len(report.tables)


# ---------------------------------------------------------------------------------------------- the policy
def _everything(report: Report, tmp: Path) -> str:
    files = write_report(report, tmp)
    return "\n".join(p.read_text(encoding="utf-8") for p in files.values() if p.suffix in (".html", ".json", ".csv"))


def test_a_party_with_no_agreement_sees_nothing_of_others(store: Store, tmp_path: Path) -> None:
    report = make_report(store.repo, DAY, "observer")
    text = _everything(report, tmp_path)
    others = [r[0] for r in store.sql("SELECT id FROM operations WHERE party_id != 'observer'")]
    assert others and not [o for o in others if o in text]
    for party in ("coalition", "russia", "france", "un-ocha"):
        assert party not in text
    assert "obs-survey" in text and "OBSERVER-UNIT" in text
    assert set(report.parties) == {"observer"}
    assert report.summary["notices"] == 1 and report.summary["alerts"] == 0


def test_released_planning_detail_reaches_france_not_russia(store: Store, tmp_path: Path) -> None:
    france = _everything(make_report(store.repo, DAY, "france"), tmp_path / "fr")
    russia = _everything(make_report(store.repo, DAY, "russia"), tmp_path / "ru")
    coalition_detail = ["CJTF-OIR strike cell", "SHELL71", "SNOOP21", "close air support", "340th EARS", "LATE01"]
    for text in coalition_detail:
        assert text in france, text
        assert text not in russia, text
    french_detail = ["Rafale detachment", "RAFALE11", "strike package east of Raqqa"]
    assert all(t in france for t in french_detail) and not any(t in russia for t in french_detail)
    assert "long-range aviation" in russia and "long-range aviation" not in france
    for text in (france, russia):
        assert "co-planned-secret" not in text and "PLANNED-ONLY-PURPOSE" not in text and "obs-survey" not in text


def test_party_reports_keep_to_what_the_party_was_told(store: Store) -> None:
    russia = make_report(store.repo, DAY, "russia")
    # Russia filed the notices that met the French package: it sees the conflicts, not France's proposals
    conflicts = rows(russia, "conflicts")
    assert len(conflicts) == 2 and all(r["proposals"] == "(proposed to the operation's owner)" for r in conflicts)
    assert all("conflict cleared" in str(r["outcome"]) for r in conflicts)
    # alerts: only those delivered to Russia (not the coalition's intrusion, not the next day's)
    assert {r["kind"] for r in rows(russia, "alerts")} == {"nonconforming", "predicted_conflict"}
    # acknowledgements: its own deliveries, and the delivery records (no payload) of its own notices
    mine = {r[0] for r in store.sql("SELECT id FROM deliveries WHERE party_id = 'russia'")}
    of_its_notices = {r[0] for r in store.sql(
        "SELECT d.id FROM deliveries d JOIN notices n ON n.id = d.notice_id WHERE n.party_id = 'russia'")}
    assert {r["delivery_id"] for r in rows(russia, "acknowledgements")} <= mine | of_its_notices
    # protected-site warnings: those on its own strikes; France has none, the UN registrant sees them
    assert len(rows(russia, "site_warnings")) == 4
    assert rows(make_report(store.repo, DAY, "france"), "site_warnings") == []
    assert {r["site_id"] for r in rows(make_report(store.repo, DAY, "un-ocha"), "site_warnings")} == {
        "raqqa-national-hospital", "raqqa-school-17"}


@pytest.mark.parametrize("party", ["russia", "france", "coalition", "un-ocha", "observer"])
def test_the_visible_dataset_holds_only_what_the_policy_allows(store: Store, party: str) -> None:
    vis = gather(store.repo, DAY, party)
    book = AgreementBook([a for a in store.repo.list_agreements() if party in a.parties])
    for op_id, op in vis.operations.items():
        stored = store.repo.get_operation(op_id)
        assert stored is not None
        if stored.party_id == party:
            assert op.own
            continue
        shown = view_operation(party, stored, book) if vis.agreements else None
        assert shown is not None and stored.state.value != "planned", op_id
        assert op.detail == shown.get("detail", {})
    for d in vis.deliveries:
        assert d.party_id == party or d.payload == {}
    for n in vis.notices:
        assert n.party_id == party or n.source == "received"
        for r in n.resolutions:
            assert store.repo.get_operation(r.operation_id).party_id == party  # type: ignore[union-attr]


# ---------------------------------------------------------------------------------------------- files, HTML
def test_html_is_self_contained_and_files_are_written(store: Store, tmp_path: Path) -> None:
    report = make_report(store.repo, DAY)
    files = write_report(report, tmp_path)
    page = files["html"].read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert page.count("data:image/png;base64,") == 4
    for name, table in report.tables.items():
        lines = files[name].read_text(encoding="utf-8").splitlines()
        assert lines[0].split(",") == list(table.columns) and len(lines) >= len(table.rows) + 1
        assert f"<h2>{escape(table.title)}</h2>" in page  # escaped as the template escapes (markupsafe)
    for plot in ("timeline", "activity", "lead_times", "acks"):
        assert files[f"plot-{plot}"].read_bytes().startswith(b"\x89PNG")
    data = json.loads(files["json"].read_text(encoding="utf-8"))
    assert data["summary"] == report.summary and set(data["tables"]) == set(report.tables)
    assert "first use" in page and "mou-coalition-russia" in page


def test_cli_report(store: Store, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "out"
    result = runner.invoke(app, ["report", "--day", "2015-11-17", "--party", "france", "--db", str(store.db),
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert data["party"] == "france" and data["summary"] == make_report(store.repo, DAY, "france").summary
    assert (out / "report.html").is_file() and (out / "notices.csv").is_file()
    assert runner.invoke(app, ["report", "--day", "17/11/2015", "--db", str(store.db)]).exit_code == 2
    assert runner.invoke(app, ["report", "--day", "2015-11-17", "--party", "nobody", "--db", str(store.db),
                               "--out", str(out)]).exit_code == 2


# ---------------------------------------------------------------------------------------------- regions
@settings(max_examples=300, deadline=None)
@given(st.floats(25.0, 62.0), st.floats(24.0, 49.0))
def test_a_point_is_in_the_first_listed_region_holding_it(lon: float, lat: float) -> None:
    point = shapely.Point(lon, lat)
    if any(shapely.Polygon(ring).boundary.distance(point) < 1e-9 for _, ring in _TABLE):
        return  # on a border: either side is right
    expected = next((name for name, ring in _TABLE if shapely.Polygon(ring).covers(point)), OTHER)
    assert primary_region(point) == expected
    assert sum(1 for r in regions() if r.shape.covers(point)) == (0 if expected == OTHER else 1)


@settings(max_examples=40, deadline=None)
@given(st.floats(30.0, 55.0), st.floats(28.0, 45.0), st.floats(1_000.0, 300_000.0))
def test_region_shares_of_an_area_sum_to_one(lon: float, lat: float, radius_m: float) -> None:
    shape = circle_volume(lon, lat, at(1), at(2), radius_m).shape
    shares = region_shares(shape)
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-6)
    assert all(0 < s <= 1 + 1e-9 for s in shares.values())


# ---------------------------------------------------------------------------------------------- HTTP
def test_http_reports_follow_the_policy(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    c = world.client
    day = (world.clock.now + timedelta(hours=3)).date().isoformat()
    filed = c.post("/v1/operations", headers=world.auth("usa"), json={
        "id": "usa-op", "activity_class": "strike_area", "volumes": [volume(39.0, 35.9)],
        "detail": {"purpose": "USA-PURPOSE-RELEASED", "unit": "USA-UNIT-PRIVATE"}})
    assert filed.status_code == 201, filed.text
    filed = c.post("/v1/operations", headers=world.auth("rus"), json={
        "id": "rus-op", "activity_class": "bomber_route", "volumes": [volume(39.02, 35.9)],
        "detail": {"unit": "RUS-UNIT"}})
    assert filed.status_code == 201, filed.text

    def get(who: str, suffix: str = "", **params: str) -> Any:
        return c.get(f"/v1/reports/{day}{suffix}", headers=world.auth(who), params=params)

    fra = get("fra")
    assert fra.status_code == 200, fra.text
    text = fra.text
    assert "USA-PURPOSE-RELEASED" in text and "USA-UNIT-PRIVATE" not in text and "RUS-UNIT" not in text
    assert fra.json()["party"] == "fra"
    rus = get("rus").json()
    assert rus["summary"]["conflicts"] == 1 and "USA-PURPOSE-RELEASED" not in json.dumps(rus)
    loner = get("loner").json()
    assert loner["summary"]["notices"] == 0 and "usa-op" not in json.dumps(loner) and "rus-op" not in json.dumps(loner)
    admin = get("admin").json()
    assert admin["view"] == "operator" and admin["summary"]["notices"] == 2
    assert get("admin", party="rus").json() == rus
    assert get("rus", party="usa").status_code == 403
    assert get("rus", party="rus").json() == rus
    page = get("usa", ".html")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "https://" not in page.text and "http://" not in page.text and "usa-op" in page.text
    assert c.get(f"/v1/reports/{day}").status_code == 401
    assert c.get("/v1/reports/2015-02-30", headers=world.auth("usa")).status_code == 422
    assert c.get("/v1/reports/yesterday", headers=world.auth("usa")).status_code == 422
    assert get("admin", party="nobody").status_code == 404
    # the side asked to adjust (filed later: first_notified holds) calls its operation off
    (conflict,) = admin["tables"]["conflicts"]["rows"]
    assert conflict["adjusting_operation"] == "rus-op" and conflict["outcome"] == "not adjusted (rus-op notified)"
    assert c.post("/v1/operations/rus-op/cancel", headers=world.auth("rus")).status_code == 200
    (conflict,) = get("admin").json()["tables"]["conflicts"]["rows"]
    assert conflict["outcome"] == "rus-op cancelled"
    assert get("usa").json()["tables"]["conflicts"]["rows"][0]["outcome"] == "rus-op cancelled"
    assert all(r["operation_id"] != "rus-op" for r in get("admin").json()["tables"]["volumes"]["rows"])


def test_render_html_without_any_data(tmp_path: Path) -> None:
    repo = SQLiteRepository(tmp_path / "empty.sqlite")
    report = make_report(repo, DAY)
    page = render_html(report)
    assert "none" in page and page.count("data:image/png;base64,") == 4
    assert report.summary["notices"] == 0 and any("no alert deliveries" in n for n in report.notes)
    with pytest.raises(LookupError):
        make_report(repo, DAY, "nobody")
    repo.close()


HOSTILE = "<script>alert('{}')</script>"


def test_names_that_look_like_markup_are_escaped_in_the_page(tmp_path: Path) -> None:
    """Party, site and planning-detail text is untrusted: the page shows it as text, never as markup."""
    db = tmp_path / "hostile.sqlite"
    repo = SQLiteRepository(db)
    service = Forewarn(repo, Settings(db=db))
    service.put_party(Party(id="evil", name=HOSTILE.format("party")))
    service.put_party(Party(id="ngo", name="NGO", kind="humanitarian"))
    service.put_agreement(Agreement(id="pact", name="pact", parties=["evil", "ngo"]), at(0))
    service.register_site(ProtectedSite(id="clinic", name=HOSTILE.format("site"), category="hospital",
                                        point=(39.0, 36.0), buffer_m=2000, registered_by="ngo"), at(0))
    service.notify(Operation(id="evil-strike", party_id="evil", activity_class="strike_area",
                             volumes=[circle_volume(39.0, 36.0, at(6), at(8))],
                             detail=PlanningDetail(unit=HOSTILE.format("unit"))), at(1))
    for viewer in (None, "evil"):
        page = render_html(make_report(repo, DAY, viewer))
        assert "<script" not in page.lower()  # the page has no script of its own
        shown = html.unescape(page)
        assert HOSTILE.format("site") in shown
        if viewer == "evil":
            assert f"report of {HOSTILE.format('party')} (<code>evil</code>)" in shown
            assert HOSTILE.format("unit") in shown
    repo.close()
