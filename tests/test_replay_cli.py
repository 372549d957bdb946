"""``forewarn replay`` with files that cannot hurt: bad files exit 2 with a clean message and store nothing; a JSON
array cut mid-record keeps every record before the cut; several parties' files feed one tracker."""

from __future__ import annotations

import gzip
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TRAFFIC_SAMPLES

pytestmark = pytest.mark.slow


def forewarn(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "forewarn", *args], capture_output=True, text=True, timeout=600,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", **_pythonpath()})


def _pythonpath() -> dict[str, str]:
    import os
    return {k: v for k, v in os.environ.items() if k in ("PYTHONPATH", "HOME")}


def positions(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT coalesce(sum(n), 0) FROM track_chunks").fetchone()[0])


@pytest.fixture
def world(tmp_path: Path) -> Path:
    db = tmp_path / "r.sqlite"
    assert forewarn("demo", "--db", str(db), "--out", str(tmp_path / "out")).returncode == 0
    return db


def test_bad_files_exit_2_cleanly_and_store_nothing(world: Path, tmp_path: Path) -> None:
    sample = (TRAFFIC_SAMPLES / "quickstart.json.gz")
    bad = {
        "trunc.json.gz": sample.read_bytes()[:100_000] if sample.is_file() else gzip.compress(b"[{}]" * 9999)[:99],
        "binary.dat": bytes(range(256)) * 20,
        "text.txt": b"hello world\nthis is text\n",
        "geo.json": b'{"type": "FeatureCollection", "features": []}\n',
    }
    before = positions(world)
    for name, data in bad.items():
        (tmp_path / name).write_bytes(data)
        proc = forewarn("replay", str(tmp_path / name), "--party", "coalition", "--speed", "0", "--db", str(world))
        assert proc.returncode == 2, (name, proc.stdout, proc.stderr)
        assert "error (invalid_input)" in proc.stdout + proc.stderr, name
        assert "Traceback" not in proc.stdout + proc.stderr and "Aborted" not in proc.stdout + proc.stderr
        assert positions(world) == before


def test_a_cut_array_keeps_the_complete_records(world: Path, tmp_path: Path) -> None:
    records = [{"track_id": "c1", "t_s": 1447730000 + i, "lat_deg": 35.0, "lon_deg": 38.0 + 0.002 * i,
                "alt_m": 1000.0} for i in range(10)]
    text = json.dumps(records)
    (tmp_path / "cut.json").write_text(text[:-30])
    before = positions(world)
    proc = forewarn("replay", str(tmp_path / "cut.json"), "--party", "coalition", "--speed", "0", "--db", str(world))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = " ".join(proc.stdout.split())
    assert "accepted │ 9 │" in summary and "unparsable │ 1 │" in summary and "alerts raised │" in summary
    assert positions(world) == before + 9
    # "rejected" is a line of its own, not indented under "accepted"
    assert any(line.lstrip("│ ").startswith("rejected") for line in proc.stdout.splitlines())


def test_two_parties_feeds_in_one_tracker_predict_conflicts_between_them(world: Path, tmp_path: Path) -> None:
    # two aircraft head-on at FL100, 20 km apart closing at 500 m/s: a predicted conflict between the parties
    def track(tid: str, lon0: float, heading: float, sign: float) -> list[dict[str, object]]:
        return [{"track_id": tid, "t_s": 1447730000 + i, "lat_deg": 35.0, "lon_deg": lon0 + sign * i * 250 / 91_290,
                 "alt_m": 3048.0, "gs_mps": 250.0, "track_deg": heading, "vs_mps": 0.0} for i in range(5)]
    (tmp_path / "a.json").write_text(json.dumps(track("ca1", 38.0, 90.0, 1.0)))
    (tmp_path / "b.json").write_text(json.dumps(track("ru1", 38.22, 270.0, -1.0)))
    proc = forewarn("replay", "--feed", f"coalition={tmp_path / 'a.json'}", "--feed", f"russia={tmp_path / 'b.json'}",
                    "--speed", "0", "--db", str(world))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "predicted_conflict" in proc.stdout, proc.stdout


def test_replaying_a_file_again_stores_nothing_twice_and_says_so(world: Path, tmp_path: Path) -> None:
    records = [{"track_id": "d1", "t_s": 1447730000 + i, "lat_deg": 35.0, "lon_deg": 38.0 + 0.002 * i,
                "alt_m": 1000.0} for i in range(8)]
    (tmp_path / "again.json").write_text(json.dumps(records))
    before = positions(world)
    for _ in range(2):  # two processes: the second remembers nothing but the database
        proc = forewarn("replay", str(tmp_path / "again.json"), "--party", "coalition", "--speed", "0",
                        "--db", str(world))
        assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = " ".join(proc.stdout.split())
    assert "accepted │ 0 │" in summary and "already_stored │ 8 │" in summary
    assert positions(world) == before + 8
