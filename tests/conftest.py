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


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "forewarn.sqlite"
