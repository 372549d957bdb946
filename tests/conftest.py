"""Shared fixtures. Services (PostgreSQL) are optional on a laptop and required in CI:
set FOREWARN_REQUIRE_SERVICES=1 to turn their skips into failures."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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


# ---------------------------------------------------------------------------------------------- PostgreSQL
POSTGRES_SERVER = os.environ.get("FOREWARN_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
"""The server the PostgreSQL tests create their databases on (a URL of any database on it)."""


class PostgresServer:
    """Creates uniquely named databases (with PostGIS) on the test server and drops them at the end."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.created: list[str] = []

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.encode())

    def create(self) -> str:
        """A fresh empty database (PostGIS installed); its URL."""
        import secrets
        from urllib.parse import urlsplit

        import psycopg

        name = f"forewarn_test_{os.getpid()}_{secrets.token_hex(4)}"
        self._admin(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        url = urlsplit(self.url)._replace(path="/" + name).geturl()
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        return url

    def drop_all(self) -> None:
        for name in self.created:
            self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The PostgreSQL server of the tests (``FOREWARN_TEST_POSTGRES``); skipped when it is unreachable (a failure
    with FOREWARN_REQUIRE_SERVICES=1). Each xdist worker has its own fixture, so its own databases."""
    try:
        import psycopg

        with psycopg.connect(POSTGRES_SERVER, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # ImportError or any connection failure: the service is missing
        require_or_skip(f"PostgreSQL not reachable at {POSTGRES_SERVER} ({type(exc).__name__}: {exc})")
    server = PostgresServer(POSTGRES_SERVER)
    yield server
    server.drop_all()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """One fresh database for this test session (this xdist worker), PostGIS installed; dropped at the end."""
    return postgres_server.create()


@pytest.fixture
def postgres_repo(postgres_url: str) -> Iterator[Any]:
    """A :class:`PostgresRepository` over the session's database, emptied before the test."""
    from forewarn.store.postgres.repository import PostgresRepository

    repo = PostgresRepository(postgres_url, max_size=4)
    tables = [r[0] for r in repo.rows(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
        "AND tablename NOT IN ('schema_migrations', 'spatial_ref_sys')")]
    repo.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    yield repo
    repo.close()
