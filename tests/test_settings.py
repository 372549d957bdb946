"""Settings from the environment: a bad value is a clear error naming the variable, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from forewarn.errors import InvalidInput
from forewarn.service.settings import load_settings


def test_load_settings_names_each_bad_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOREWARN_MAX_VERTICES", "abc")
    monkeypatch.setenv("FOREWARN_SQLITE_SYNCHRONOUS", "off")
    with pytest.raises(InvalidInput) as caught:
        load_settings(tmp_path / "x.sqlite")
    fields = {e["field"]: e["message"] for e in caught.value.details["errors"]}
    assert set(fields) == {"FOREWARN_MAX_VERTICES", "FOREWARN_SQLITE_SYNCHRONOUS"}
    assert "'abc'" in fields["FOREWARN_MAX_VERTICES"] and "'off'" in fields["FOREWARN_SQLITE_SYNCHRONOUS"]
    monkeypatch.delenv("FOREWARN_MAX_VERTICES")
    monkeypatch.setenv("FOREWARN_SQLITE_SYNCHRONOUS", "normal")
    settings = load_settings(tmp_path / "x.sqlite", port=9000)
    assert (settings.db, settings.port, settings.sqlite_synchronous) == (tmp_path / "x.sqlite", 9000, "normal")


@pytest.mark.parametrize("argv", [["demo"], ["serve"], ["ledger", "verify"], ["list", "operations"]])
def test_the_command_line_reports_bad_settings_without_a_traceback(tmp_path: Path, argv: list[str]) -> None:
    env = {**os.environ, "FOREWARN_MAX_VERTICES": "abc", "FOREWARN_DB": str(tmp_path / "x.sqlite")}
    done = subprocess.run([sys.executable, "-m", "forewarn", *argv], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "invalid settings" in done.stderr and "FOREWARN_MAX_VERTICES" in done.stderr
    assert not (tmp_path / "x.sqlite").exists()  # nothing was created
