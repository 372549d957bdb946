"""Issue 19, the disk: a damaged database is refused at open with a message naming the file and what to do,
``/health`` answers 503 when the store cannot be read, and ``forewarn backup`` makes a consistent copy of a live
database that a restore drill brings back with a ledger that verifies."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from forewarn.core.model import Party
from forewarn.http.app import create_app
from forewarn.service.notices import Forewarn
from forewarn.service.settings import Settings
from forewarn.store import SQLiteRepository
from forewarn.store.sqlite.repository import DamagedStore
from tests.builders import agreement, circle, operation


def _filled(db: Path, notices: int = 30) -> Forewarn:
    service = Forewarn(SQLiteRepository(db), Settings(db=db))
    for pid in ("usa", "rus"):
        service.put_party(Party(id=pid, name=pid.upper()))
    service.put_agreement(agreement("mou", ["usa", "rus"]))
    _file(service, 0, notices)
    return service


def _file(service: Forewarn, first: int, count: int) -> None:
    for i in range(first, first + count):
        now = datetime.now(UTC)
        service.notify(operation(f"op{i}", "usa", [circle(30.0 + (i % 40) * 0.5, 20.0, t0=now)]), now)


def _checkpoint(service: Forewarn) -> None:
    assert isinstance(service.repo, SQLiteRepository)
    service.repo._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _damage(db: Path, keep: int) -> None:
    """Overwrite the file from byte ``keep`` on with garbage (the size is kept)."""
    size = db.stat().st_size
    with db.open("r+b") as f:
        f.seek(keep)
        f.write(bytes((i * 151 + 7) % 256 for i in range(size - keep)))


def test_a_damaged_file_is_refused_at_open_naming_the_file_and_what_to_do(tmp_path: Path) -> None:
    db = tmp_path / "d.sqlite"
    service = _filled(db)
    _checkpoint(service)
    assert isinstance(service.repo, SQLiteRepository)
    service.repo.close()
    _damage(db, db.stat().st_size - 4096)  # the last page
    with pytest.raises(DamagedStore) as caught:
        SQLiteRepository(db)
    assert str(db) in caught.value.message and "restore" in caught.value.message
    assert "forewarn backup" in caught.value.message


@pytest.mark.slow
def test_serve_refuses_a_damaged_file_without_a_traceback(tmp_path: Path) -> None:
    db = tmp_path / "d.sqlite"
    service = _filled(db, 5)
    _checkpoint(service)
    assert isinstance(service.repo, SQLiteRepository)
    service.repo.close()
    _damage(db, 4096)
    done = subprocess.run([sys.executable, "-m", "forewarn", "serve", "--db", str(db), "--port", "1"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "store_damaged" in done.stderr and str(db) in done.stderr


def test_health_answers_503_when_the_store_cannot_be_read(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite"
    service = _filled(db, 5)
    client = TestClient(create_app(Settings(db=db), service=service, run_worker=False))
    assert client.get("/v1/health").json()["status"] == "ok"
    _checkpoint(service)
    _damage(db, 100)  # everything after the header
    r = client.get("/v1/health")
    assert r.status_code == 503 and r.json()["code"] == "store_damaged", r.text
    assert str(db) in r.json()["message"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "forewarn", *args], capture_output=True, text=True, timeout=120,
                          check=False, env=os.environ.copy())


@pytest.mark.slow
def test_restore_drill_backup_of_a_live_database_damage_restore_verify(tmp_path: Path) -> None:
    db, copy = tmp_path / "live.sqlite", tmp_path / "backup.sqlite"
    service = _filled(db, 20)
    filing = threading.Thread(target=_file, args=(service, 20, 40))  # the database is written during the backup
    filing.start()
    done = _cli("backup", str(copy), "--db", str(db))
    filing.join()
    assert done.returncode == 0, done.stderr
    assert _cli("backup", str(copy), "--db", str(db)).returncode == 2  # never over an existing file
    # the incident: the live file is damaged
    _checkpoint(service)
    assert isinstance(service.repo, SQLiteRepository)
    service.repo.close()
    _damage(db, 8192)
    with pytest.raises(DamagedStore):
        SQLiteRepository(db)
    # the restore, as docs/resilience.md says: keep the damaged file aside, copy the backup in, drop -wal/-shm
    db.rename(tmp_path / "damaged.sqlite")
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(copy, db)
    verified = _cli("ledger", "verify", "--db", str(db))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    restored = SQLiteRepository(db)
    ops = {op.id for op in restored.list_operations()}
    assert {f"op{i}" for i in range(20)} <= ops  # everything committed before the backup began
    restored.close()
