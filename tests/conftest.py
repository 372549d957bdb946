"""Shared fixtures. Services (PostgreSQL) are optional on a laptop and required in CI:
set FOREWARN_REQUIRE_SERVICES=1 to turn their skips into failures."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "traffic-samples"
T0 = datetime(2015, 11, 17, 0, 0, tzinfo=UTC)


def require_or_skip(reason: str) -> None:
    """Skip with ``reason``, or fail when FOREWARN_REQUIRE_SERVICES is set (as in CI)."""
    if os.environ.get("FOREWARN_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required service missing: {reason}")
    pytest.skip(reason)


TRAFFIC_SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "traffic-samples"
"""The real recorded flights of ../shared/data/traffic-samples (the repository sits beside shared/)."""


@pytest.fixture
def traffic_samples() -> Path:
    """The traffic samples folder; skipped without it on a laptop, a failure in CI."""
    if not TRAFFIC_SAMPLES.is_dir():
        require_or_skip(f"traffic samples not found at {TRAFFIC_SAMPLES} (the repository sits beside shared/)")
    return TRAFFIC_SAMPLES


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "forewarn.sqlite"
