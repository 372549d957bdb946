"""The gate: ruff, mypy (strict on src/) and the import contract (import-linter, pyproject.toml) must pass; every
setting is documented in docs/settings.md (generated from the code); the README names the commands CI runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from forewarn.service.settings import Settings
from forewarn.service.settings_doc import settings_markdown

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("cmd", [
    [sys.executable, "-m", "ruff", "check", "src", "tests", "bench"],
    [sys.executable, "-m", "mypy"],
    [str(Path(sys.executable).parent / "lint-imports")],
], ids=["ruff", "mypy", "import-contract"])
def test_linters_pass(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_settings_page_is_generated_from_the_code() -> None:
    """docs/settings.md is exactly what the code generates now (regenerate: python -m
    forewarn.service.settings_doc > docs/settings.md), and so names every setting with its default."""
    committed = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    assert committed == settings_markdown(), "docs/settings.md is stale: regenerate it (see its first line)"
    for name, field in Settings.model_fields.items():
        assert f"`FOREWARN_{name.upper()}`" in committed and field.description


def test_readme_names_the_commands_ci_runs() -> None:
    """The README's install, demo and test commands are the ones CI runs (its wording is free)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for command in ("install.sh", "forewarn demo", "python -m pytest"):
        assert command in readme, f"the README does not name {command!r}"
    install = (ROOT / "install.sh").read_text(encoding="utf-8")
    assert "pip install -e '.[dev]'" in install and "npm ci" in install
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "install.sh" in ci and "python -m pytest" in ci
