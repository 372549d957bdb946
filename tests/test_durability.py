"""The durability setting: SQLite's ``synchronous`` level on every connection the store opens."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from pydantic import ValidationError

from forewarn.service.settings import Settings
from forewarn.store import SQLiteRepository

pytestmark = pytest.mark.slow  # the fast tier: python -m pytest -m "not slow"

FULL, NORMAL = 2, 1  # PRAGMA synchronous answers


def _level(repo: SQLiteRepository) -> int:
    return int(repo._conn.execute("PRAGMA synchronous").fetchone()[0])


def test_full_by_default_normal_on_request_on_every_thread(tmp_path: Path) -> None:
    assert _level(SQLiteRepository(tmp_path / "a.sqlite")) == FULL
    repo = SQLiteRepository(tmp_path / "b.sqlite", synchronous="normal")
    seen: list[int] = []
    worker = threading.Thread(target=lambda: seen.append(_level(repo)))  # each thread opens its own connection
    worker.start()
    worker.join()
    assert _level(repo) == NORMAL and seen == [NORMAL]


def test_an_unknown_level_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="synchronous must be one of full, normal"):
        SQLiteRepository(tmp_path / "c.sqlite", synchronous="off")
    assert not (tmp_path / "c.sqlite").exists()
    monkeypatch.setenv("FOREWARN_SQLITE_SYNCHRONOUS", "off")
    with pytest.raises(ValidationError):
        Settings()


def test_the_service_opens_its_store_at_the_configured_level(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from forewarn.http.app import create_app

    monkeypatch.setenv("FOREWARN_SQLITE_SYNCHRONOUS", "normal")
    app = create_app(Settings(db=tmp_path / "d.sqlite"), run_worker=False)
    repo = app.state.runtime.service.repo
    assert isinstance(repo, SQLiteRepository) and _level(repo) == NORMAL
    monkeypatch.delenv("FOREWARN_SQLITE_SYNCHRONOUS")
    app = create_app(Settings(db=tmp_path / "e.sqlite"), run_worker=False)
    assert _level(app.state.runtime.service.repo) == FULL
