"""Persistence: a Repository protocol and its backends (SQLite embedded default).

Every backend passes the same contract suite (``tests/test_store_contract.py``).
"""

from __future__ import annotations

from forewarn.store.repository import Repository, StoredNotice
from forewarn.store.sqlite.repository import SQLiteRepository

__all__ = ["Repository", "SQLiteRepository", "StoredNotice"]
