"""The scenario end to end through the real CLI: demo, second run, JSON, check, load, export, errors."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from forewarn.cli.main import app
from forewarn.service.notices import Forewarn
from forewarn.service.scenario import builtin_scenario
from forewarn.service.settings import Settings
from forewarn.store import SQLiteRepository
from tests.oracles_strategic import detect_brute_force

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
runner = CliRunner()


def run(*args: str) -> Any:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    return result


def counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("parties", "agreements", "operations", "operation_versions", "notices", "conflicts",
                          "site_warnings", "protected_sites")}


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    folder = tmp_path_factory.mktemp("demo")
    db, out = folder / "demo.sqlite", folder / "out"
    result = run("demo", "--db", str(db), "--out", str(out))
    assert result.exit_code == 0, result.output
    return db, out, result.output


def test_demo_prints_the_timeline(demo_db: tuple[Path, Path, str]) -> None:
    db, _, text = demo_db
    assert str(db.resolve()) in text
    for expected in ("Coalition CAOC", "Russian Aerospace Forces", "French forces", "mou-coalition-russia",
                     "coalition-france", "ru-bombers-raqqa", "ru-kalibr-raqqa", "ru-strike-raqqa",
                     "PROTECTED SITE: Raqqa National Hospital", "PROTECTED SITE: School No. 17"):
        assert expected in text
    russian = text[text.index("notified ru-bombers-raqqa"):]
    # every other party is told whether it is affected; the coalition needs no adjustment
    assert re.search(r"Coalition CAOC \(Al Udeid, Qatar\): not affected: no adjustment needed", russian)
    assert "French forces (Operation Chammal): affected: 1 conflict(s); asked to adjust fr-package-raqqa" in russian
    assert "fr-package-raqqa is asked to adjust" in russian
    assert "move earlier by 1 h 40 min" in russian and "move later by 3 h 40 min" in russian
    assert "7 notices, 2 conflict(s), 4 protected-site warning(s)" in text


def test_demo_figures_match_an_independent_brute_force(demo_db: tuple[Path, Path, str]) -> None:
    db, _, _ = demo_db
    svc = Forewarn(SQLiteRepository(db), Settings(db=db))
    ops = {o.id: o for o in svc.repo.list_operations()}
    for notice in svc.repo.list_notices():
        # the scenario files notices in (time, id) order: those before this one were in the airspace
        earlier = [o for o in ops.values()
                   if o.notified_at is not None and (o.notified_at, o.id) < (notice.at, notice.operation_id)]
        expected = detect_brute_force(ops[notice.operation_id], earlier, svc.airspace.book, notice.at)
        assert [c.pair for c in notice.outcome.conflicts] == [c.pair for c in expected]


def test_demo_writes_geojson_and_offline_html(demo_db: tuple[Path, Path, str]) -> None:
    _, out, _ = demo_db
    collection = json.loads((out / "situation.geojson").read_text())
    kinds = [f["properties"]["kind"] for f in collection["features"]]
    assert kinds.count("volume") == 7 and kinds.count("protected_site") == 3
    assert kinds.count("conflict") == 2 and kinds.count("site_warning") == 4
    html = (out / "situation.html").read_text()
    assert 'id="fw-map"' in html and "fr-package-raqqa" in html
    markup = re.sub(r"(<script[^>]*>).*?(</script>)", r"\1\2", html, flags=re.S)  # Leaflet's code names its site
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", markup)


def test_second_demo_neither_duplicates_nor_fails(demo_db: tuple[Path, Path, str], tmp_path: Path) -> None:
    db, _, _ = demo_db
    before = counts(db)
    result = run("demo", "--db", str(db), "--out", str(tmp_path / "again"))
    assert result.exit_code == 0, result.output
    assert counts(db) == before
    assert "replayed from the database" in result.output
    assert "7 notices, 2 conflict(s), 4 protected-site warning(s)" in result.output


def test_demo_json_is_machine_readable(demo_db: tuple[Path, Path, str], tmp_path: Path) -> None:
    db, _, _ = demo_db
    result = run("demo", "--db", str(db), "--out", str(tmp_path), "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["scenario"] == "raqqa-2015" and len(data["parties"]) == 5
    notices = [s for s in data["steps"] if s["kind"] == "notice"]
    conflicts = [c for s in notices for c in s["outcome"]["conflicts"]]
    assert {(c["a"]["operation_id"], c["b"]["operation_id"], c["adjusting_operation"]) for c in conflicts} == {
        ("ru-bombers-raqqa", "fr-package-raqqa", "fr-package-raqqa"),
        ("ru-kalibr-raqqa", "fr-package-raqqa", "fr-package-raqqa"),
    }


def test_check_answers_without_storing(demo_db: tuple[Path, Path, str]) -> None:
    db, _, _ = demo_db
    before = counts(db)
    result = run("check", str(EXAMPLES / "plan.geojson"), "--as", "coalition", "--db", str(db),
                 "--at", "2015-11-17T03:30:00Z", "--json")
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.output)
    assert {c["b"]["operation_id"] for c in outcome["conflicts"]} == {
        "fr-package-raqqa", "ru-strike-raqqa", "ru-kalibr-raqqa"}
    [proposals] = outcome["resolutions"]
    assert proposals["operation_id"] == "co-isr-raqqa-plan" and proposals["options"]
    assert counts(db) == before
    text = run("check", str(EXAMPLES / "plan.geojson"), "--as", "coalition", "--db", str(db),
               "--at", "2015-11-17T03:30:00Z").output
    assert "nothing stored" in text and "CONFLICT" in text


def test_bad_input_exits_2_with_a_clear_error_and_stores_nothing(demo_db: tuple[Path, Path, str],
                                                                 tmp_path: Path) -> None:
    db, _, _ = demo_db
    before = counts(db)
    bowtie = {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": {
        "type": "Polygon", "coordinates": [[[38, 35], [39, 36], [39, 35], [38, 36], [38, 35]]]},
        "properties": {"lower_m": 0, "upper_m": 100, "start": "2015-11-17T05:00:00Z", "end": "2015-11-17T06:00:00Z"}}]}
    plan = tmp_path / "bad.geojson"
    plan.write_text(json.dumps(bowtie))
    result = run("file", str(plan), "--as", "coalition", "--id", "bad-op", "--db", str(db),
                 "--at", "2015-11-17T03:00:00Z")
    assert result.exit_code == 2
    assert "not simple" in result.output
    naive = tmp_path / "naive.geojson"
    naive.write_text(json.dumps(bowtie).replace("Z\"", "\""))
    assert run("check", str(naive), "--as", "coalition", "--db", str(db)).exit_code == 2
    assert run("check", str(tmp_path / "missing.geojson"), "--as", "coalition", "--db", str(db)).exit_code == 2
    assert run("list", "everything", "--db", str(db)).exit_code == 2
    assert counts(db) == before


def test_file_then_cancel_through_the_cli(tmp_path: Path) -> None:
    db = tmp_path / "f.sqlite"
    assert run("load", str(EXAMPLES / "scenario.yaml"), "--db", str(db)).exit_code == 0
    plan = {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": {
        "type": "Point", "coordinates": [7.61, 47.555]}, "properties": {
            "radius_m": 200, "lower_m": 300, "upper_m": 400,
            "start": "2026-03-02T08:10:00Z", "end": "2026-03-02T08:20:00Z"}}]}
    path = tmp_path / "p.geojson"
    path.write_text(json.dumps(plan))
    result = run("file", str(path), "--as", "uss-alpha", "--id", "alpha-9", "--class", "drone", "--db", str(db),
                 "--at", "2026-03-02T07:30:00Z", "--json")
    assert result.exit_code == 0, result.output
    assert [c["b"]["operation_id"] for c in json.loads(result.output)["conflicts"]] == ["bravo-survey-1"]
    refused = run("cancel", "alpha-9", "--as", "uss-bravo", "--db", str(db), "--at", "2026-03-02T07:31:00Z")
    assert refused.exit_code == 2 and "no operation alpha-9" in refused.output
    assert run("cancel", "alpha-9", "--as", "uss-alpha", "--db", str(db), "--at", "2026-03-02T07:31:00Z").exit_code == 0
    ops = json.loads(run("list", "operations", "--db", str(db), "--json").output)
    assert {o["id"]: o["state"] for o in ops}["alpha-9"] == "cancelled"


def test_load_scenario_file_is_idempotent_and_refuses_silent_changes(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"
    first = run("load", str(EXAMPLES / "scenario.yaml"), "--db", str(db))
    assert first.exit_code == 0, first.output
    snapshot = counts(db)
    assert snapshot["operations"] == 3 and snapshot["notices"] == 2 and snapshot["conflicts"] == 1
    again = run("load", str(EXAMPLES / "scenario.yaml"), "--db", str(db), "--json")
    assert again.exit_code == 0
    assert {s["status"] for s in json.loads(again.output)} == {"unchanged"}
    assert counts(db) == snapshot
    changed = tmp_path / "changed.yaml"
    changed.write_text((EXAMPLES / "scenario.yaml").read_text().replace("upper_m: 420", "upper_m: 480"))
    result = run("load", str(changed), "--db", str(db))
    assert result.exit_code == 2 and "different content" in result.output
    assert counts(db) == snapshot
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nclock_start: 2026-01-01T00:00:00\nparties: [{id: 'A B', name: x}]\n")
    result = run("load", str(broken), "--db", str(db))
    assert result.exit_code == 2 and "parties.0.id" in result.output and "clock_start" in result.output


def test_export_geojson_and_list(demo_db: tuple[Path, Path, str], tmp_path: Path) -> None:
    db, _, _ = demo_db
    result = run("export", "--geojson", "--db", str(db))
    assert result.exit_code == 0
    assert json.loads(result.output)["type"] == "FeatureCollection"
    target = tmp_path / "s.geojson"
    html = tmp_path / "m.html"
    assert run("export", "--geojson", "--db", str(db), "--out", str(target), "--html", str(html)).exit_code == 0
    assert json.loads(target.read_text())["features"]
    listed = json.loads(run("list", "parties", "--db", str(db), "--json").output)
    assert [p["id"] for p in listed] == sorted(p.id for p in builtin_scenario("raqqa-2015").parties)


def test_console_script_runs_the_demo(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "forewarn"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "forewarn"]
    proc = subprocess.run([*cmd, "demo", "--db", str(tmp_path / "d.sqlite"), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "ru-kalibr-raqqa" in proc.stdout and (tmp_path / "o" / "situation.html").exists()
    help_text = subprocess.run([*cmd, "--help"], capture_output=True, text=True, timeout=60).stdout
    for command in ("demo", "check", "load", "export", "list", "file", "cancel", "serve", "party"):
        assert command in help_text


def test_the_demo_reads_at_80_columns(tmp_path: Path) -> None:
    """Issue 18: nothing of the demo is cut at 80 columns; the observer bound by no agreement is shown as told
    nothing; each notice says where and when; a proposal that also clears earlier conflicts says so."""
    exe = Path(sys.executable).parent / "forewarn"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "forewarn"]
    proc = subprocess.run([*cmd, "demo", "--db", str(tmp_path / "d.sqlite"), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "COLUMNS": "80", "TERM": "dumb"})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "…" not in out
    assert "mou-coalition-russia  between coalition, france, russia" in out
    assert re.search(r"Civil aviation observer \(no agreement\): bound by no agreement with Russian Aerospace "
                     r"Forces: told nothing", out)
    assert re.search(r"notified ru-kalibr-raqqa .*\n    within \d+\.\d\dE-\d+\.\d\dE \d+\.\d\dN-\d+\.\d\dN, "
                     r"[\d,]+-[\d,]+ m \(FL\d{3}-FL\d{3}\), 17 Nov \d\d:\d\dZ to 17 Nov \d\d:\d\dZ", out)
    assert "clears 2 conflict(s): the 1 found now and 1 found by earlier notices" in out


def test_json_scenario_files_load_too(tmp_path: Path) -> None:
    import yaml

    data = yaml.safe_load((EXAMPLES / "scenario.yaml").read_text())
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(data))
    db = tmp_path / "j.sqlite"
    result = run("load", str(path), "--db", str(db), "--json")
    assert result.exit_code == 0, result.output
    assert counts(db)["conflicts"] == 1
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    failed = run("load", str(bad), "--db", str(db))
    assert failed.exit_code == 2 and "not valid JSON" in failed.output
