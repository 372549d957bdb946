"""Shared fixtures. Services (PostgreSQL) are optional on a laptop and required in CI:
set FOREWARN_REQUIRE_SERVICES=1 to turn their skips into failures."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

T0 = datetime(2015, 11, 17, 0, 0, tzinfo=UTC)


def require_or_skip(reason: str) -> None:
    """Skip with ``reason``, or fail when FOREWARN_REQUIRE_SERVICES is set (as in CI)."""
    if os.environ.get("FOREWARN_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required service missing: {reason}")
    pytest.skip(reason)


def _shared_dir() -> Path:
    """The project's ``shared/`` folder: ``$FOREWARN_SHARED``, else beside this repository (as in CI), else beside
    the local repository this one was cloned from (a clean clone made elsewhere for checking)."""
    if os.environ.get("FOREWARN_SHARED"):
        return Path(os.environ["FOREWARN_SHARED"])
    repo = Path(__file__).resolve().parents[1]
    candidates = [repo.parent / "shared"]
    try:
        origin = subprocess.run(["git", "-C", str(repo), "config", "--get", "remote.origin.url"],
                                capture_output=True, text=True, timeout=10, check=False).stdout.strip()
    except OSError:
        origin = ""
    if origin and Path(origin).is_dir():
        candidates.append(Path(origin).resolve().parent / "shared")
    return next((c for c in candidates if c.is_dir()), candidates[0])


TRAFFIC_SAMPLES = _shared_dir() / "data" / "traffic-samples"
"""The real recorded flights of shared/data/traffic-samples."""


@pytest.fixture
def traffic_samples() -> Path:
    """The traffic samples folder; skipped without it on a laptop, a failure in CI."""
    if not TRAFFIC_SAMPLES.is_dir():
        require_or_skip(f"traffic samples not found at {TRAFFIC_SAMPLES} "
                        "(put the repository beside shared/ or set FOREWARN_SHARED)")
    return TRAFFIC_SAMPLES


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "forewarn.sqlite"
