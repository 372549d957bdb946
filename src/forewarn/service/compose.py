"""The composition root: the one place that builds the store and the service from settings.

Faces (the CLI, the HTTP application, the benchmarks) ask here for what they need instead of constructing a
backend themselves, so the choice of backend is made once.
"""

from __future__ import annotations

from forewarn.service.notices import Forewarn
from forewarn.service.settings import Settings
from forewarn.store.sqlite.repository import SQLiteRepository


def open_repository(settings: Settings) -> SQLiteRepository:
    """The store the settings name (``db``), at their durability (``sqlite_synchronous``)."""
    return SQLiteRepository(settings.db, synchronous=settings.sqlite_synchronous)


def build_service(settings: Settings) -> Forewarn:
    """The service over the store the settings name."""
    return Forewarn(open_repository(settings), settings)
