"""The gate: ruff, mypy (strict on src/) and the import contract (import-linter, pyproject.toml) must pass; every
setting is documented in the README."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from forewarn.service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("cmd", [
    [sys.executable, "-m", "ruff", "check", "src", "tests", "bench"],
    [sys.executable, "-m", "mypy"],
    [str(Path(sys.executable).parent / "lint-imports")],
], ids=["ruff", "mypy", "import-contract"])
def test_linters_pass(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name, field in Settings.model_fields.items():
        env = f"FOREWARN_{name.upper()}"
        assert env in readme, f"{env} is not documented in README.md"
        assert str(field.default) in readme or name == "db", f"default of {env} missing from README.md"


def test_readme_names_the_commands_ci_runs() -> None:
    """The README's install, demo and test commands are the ones CI runs (its wording is free)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for command in ("install.sh", "forewarn demo", "python -m pytest"):
        assert command in readme, f"the README does not name {command!r}"
    install = (ROOT / "install.sh").read_text(encoding="utf-8")
    assert "pip install -e '.[dev]'" in install and "npm ci" in install
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "install.sh" in ci and "python -m pytest" in ci
