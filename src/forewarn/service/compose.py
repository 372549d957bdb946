"""The composition root: the one place that builds the store and the service from settings.

Faces (the CLI, the HTTP application, the benchmarks) ask here for what they need instead of constructing a
backend themselves, so the choice of backend is made once: PostgreSQL when ``database_url`` is set
(``FOREWARN_DATABASE_URL``), else the SQLite file ``db``.
"""

from __future__ import annotations

from forewarn.service.notices import Forewarn
from forewarn.service.settings import Settings
from forewarn.store.keyfile import KeyFile
from forewarn.store.postgres.repository import PostgresRepository
from forewarn.store.postgres.track_changes import SharedPostgresTrackStore
from forewarn.store.repository import Repository, TrackStorage
from forewarn.store.sqlite.repository import SQLiteRepository
from forewarn.store.sqlite.tracks import TrackStore


def open_repository(settings: Settings) -> SQLiteRepository | PostgresRepository:
    """The store the settings name: the PostgreSQL database ``database_url`` if set, else the SQLite file ``db``
    at its durability (``sqlite_synchronous``)."""
    key_file = KeyFile(settings.signing_key_file(), settings.signing_key_passphrase())
    if settings.database_url:
        repo = PostgresRepository(settings.database_url)
        repo.use_key_file(key_file)
        return repo
    return SQLiteRepository(settings.db, synchronous=settings.sqlite_synchronous, key_file=key_file)


def open_track_store(repo: Repository) -> TrackStorage:
    """The live-track tables of the same store as ``repo`` (writes join its transactions); on PostgreSQL, with the
    change numbering that lets several processes share one tracker state (docs/tracks.md, "Several processes")."""
    if isinstance(repo, PostgresRepository):
        return SharedPostgresTrackStore(repo)
    if isinstance(repo, SQLiteRepository):
        return TrackStore(repo)
    raise TypeError(f"no track store for {type(repo).__name__}")


def build_service(settings: Settings) -> Forewarn:
    """The service over the store the settings name."""
    return Forewarn(open_repository(settings), settings)
