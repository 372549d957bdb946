"""The service's signing key and the files that hold secrets (issue 20, HIGH): the database and its WAL/SHM files
are created 0600, the private key lives in a 0600 key file (encrypted with ``FOREWARN_KEY_PASSPHRASE`` when set),
never in the database, and a key a store still holds in ``issuer_keys`` is moved out once, keeping its key id."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from forewarn.service.compose import build_service
from forewarn.service.notices import Forewarn
from forewarn.service.settings import Settings
from forewarn.service.tokens import IssuerKey
from forewarn.store import SQLiteRepository
from forewarn.store.keyfile import KeyFile

NOW = datetime(2015, 11, 17, 12, tzinfo=UTC)


@pytest.fixture
def wide_umask() -> Iterator[None]:
    """The umask of a careless shell: files would be created 0644 (or 0666) without an explicit mode."""
    old = os.umask(0o000)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _service(db: Path, **settings: Any) -> Forewarn:
    return build_service(Settings(db=db, **settings))


def test_database_wal_shm_and_key_file_are_private(db_path: Path, wide_umask: None) -> None:
    service = _service(db_path)
    key = service.issuer_key(NOW)
    service.ledger.append("probe", "s", {}, NOW)
    for path in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm"), Path(f"{db_path}.key")):
        assert path.exists(), path
        assert _mode(path) == 0o600, (path, oct(_mode(path)))
    service.repo.close()
    assert Path(f"{db_path}.key").read_text().startswith(f"kid: {key.kid}\n")


def test_the_database_never_holds_the_private_key(db_path: Path) -> None:
    service = _service(db_path)
    key = service.issuer_key(NOW)
    service.ledger.append("probe", "s", {}, NOW)
    service.repo.close()
    data = b"".join(p.read_bytes() for p in db_path.parent.iterdir() if p.name.startswith("forewarn.sqlite")
                    and not p.name.endswith(".key"))
    assert b"PRIVATE KEY" not in data
    assert _service(db_path).issuer_key(NOW).kid == key.kid  # the same key at the next start
    assert dict(_service(db_path).repo.list_issuer_keys())[key.kid].startswith("-----BEGIN PUBLIC KEY-----")


def test_a_passphrase_encrypts_the_key_file(db_path: Path) -> None:
    service = _service(db_path, key_passphrase="correct horse")
    key = service.issuer_key(NOW)
    service.repo.close()
    text = Path(f"{db_path}.key").read_text()
    assert "ENCRYPTED PRIVATE KEY" in text
    again = _service(db_path, key_passphrase="correct horse")
    assert again.issuer_key(NOW).private_pem() == key.private_pem()
    again.repo.close()
    with pytest.raises(ValueError, match="FOREWARN_KEY_PASSPHRASE"):
        _service(db_path).issuer_key(NOW)
    with pytest.raises(ValueError):
        _service(db_path, key_passphrase="wrong").issuer_key(NOW)


def test_the_key_file_setting_names_the_file(db_path: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "secrets" / "service.key"
    service = _service(db_path, key_file=elsewhere)
    key = service.issuer_key(NOW)
    assert elsewhere.read_text().startswith(f"kid: {key.kid}\n") and _mode(elsewhere) == 0o600
    assert not Path(f"{db_path}.key").exists()


def _legacy_row(repo: Any, key: IssuerKey, placeholder: str) -> None:
    """What a store written before issue 20 holds: the private PEM in ``issuer_keys``."""
    repo.execute(f"INSERT INTO issuer_keys(kid, private_pem, created_at) VALUES ({placeholder}, {placeholder}, "
                 f"{placeholder})", (key.kid, key.private_pem(), NOW.isoformat()))


def test_a_key_stored_in_sqlite_is_moved_out_once(db_path: Path) -> None:
    repo = SQLiteRepository(db_path)
    old = IssuerKey.generate()
    with repo.transaction():
        _legacy_row(repo, old, "?")
    repo.close()

    service = _service(db_path)
    entry = service.ledger.append("probe", "s", {}, NOW)
    assert service.issuer_key(NOW).private_pem() == old.private_pem()
    assert service.issuer_key(NOW).kid == old.kid
    assert _mode(Path(f"{db_path}.key")) == 0o600
    assert all("PRIVATE" not in pem for _, pem in service.repo.list_issuer_keys())
    assert service.ledger.verify().ok, entry
    service.repo.close()
    assert b"PRIVATE KEY" not in db_path.read_bytes()


def test_a_key_stored_in_postgres_is_moved_out_once(postgres_repo: Any, tmp_path: Path) -> None:
    old = IssuerKey.generate()
    with postgres_repo.transaction():
        _legacy_row(postgres_repo, old, "%s")
    key_file = KeyFile(tmp_path / "pg.key", b"pass")
    postgres_repo.use_key_file(key_file)
    assert key_file.read() == (old.kid, old.private_pem())
    assert "ENCRYPTED" in key_file.path.read_text() and _mode(key_file.path) == 0o600
    assert [kid for kid, _ in postgres_repo.list_issuer_keys()] == [old.kid]
    assert all("PRIVATE" not in pem for _, pem in postgres_repo.list_issuer_keys())
    service = Forewarn(postgres_repo, Settings())
    assert service.issuer_key(NOW).kid == old.kid
