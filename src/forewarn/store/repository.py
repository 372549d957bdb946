"""The Repository protocol: what the service needs from a store, nothing more.

Writes happen inside :meth:`Repository.transaction`; a failure inside it leaves the store unchanged.
Times are timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from forewarn.model import Agreement, Operation, OperationState, Party, ProtectedSite
from forewarn.records import NoticeOutcome


class StoredNotice(BaseModel):
    """A notice as stored: its id, kind, time and full outcome."""

    model_config = ConfigDict(frozen=True)

    id: int
    operation_id: str
    version: int
    party_id: str
    kind: str
    at: datetime
    outcome: NoticeOutcome


class Repository(Protocol):
    """Store of parties, agreements, sites, operation versions and notices."""

    def transaction(self) -> AbstractContextManager[None]:
        """One atomic unit of work: all writes inside commit together or not at all."""
        ...

    def schema_version(self) -> int: ...

    def put_party(self, party: Party) -> None: ...
    def get_party(self, party_id: str) -> Party | None: ...
    def list_parties(self) -> list[Party]: ...

    def put_agreement(self, agreement: Agreement) -> None: ...
    def get_agreement(self, agreement_id: str) -> Agreement | None: ...
    def list_agreements(self) -> list[Agreement]: ...

    def put_site(self, site: ProtectedSite) -> None: ...
    def get_site(self, site_id: str) -> ProtectedSite | None: ...
    def list_sites(self) -> list[ProtectedSite]: ...

    def add_operation_version(self, operation: Operation, at: datetime) -> None:
        """Store a new version of an operation (version 1 creates it) and make it current."""
        ...

    def set_operation_state(self, operation_id: str, state: OperationState, at: datetime,
                            notified_at: datetime | None = None) -> None: ...
    def get_operation(self, operation_id: str, version: int | None = None) -> Operation | None: ...
    def list_operations(self, states: Sequence[OperationState] | None = None,
                        party_id: str | None = None) -> list[Operation]: ...
    def operation_versions(self, operation_id: str) -> list[Operation]: ...

    def add_notice(self, outcome: NoticeOutcome) -> int:
        """Store a notice with its outcome (conflicts and site warnings indexed); returns its id."""
        ...

    def list_notices(self, operation_id: str | None = None) -> list[StoredNotice]: ...

    def iter_live_operations(self) -> Iterator[Operation]:
        """Latest version of every notified or active operation (to rebuild the index at start)."""
        ...
