"""Idempotency-Keys: a party's retried filing returns the first result instead of filing twice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from forewarn.core.records import NoticeOutcome
from forewarn.errors import InvalidInput
from forewarn.store.repository import Repository


@dataclass(frozen=True)
class Idempotency:
    """An Idempotency-Key of a party's request and the hash of that request (method, path, body)."""

    party_id: str
    key: str
    request_hash: str


def replayed(repo: Repository, idem: Idempotency | None) -> NoticeOutcome | None:
    """The stored result of an earlier request with this Idempotency-Key, if any; the same key with a different
    request is refused."""
    if idem is None:
        return None
    stored = repo.get_idempotent(idem.party_id, idem.key)
    if stored is None:
        return None
    request_hash, _, body = stored
    if request_hash != idem.request_hash:
        raise InvalidInput("this Idempotency-Key was already used for a different request",
                           {"idempotency_key": idem.key})
    return NoticeOutcome.model_validate_json(body)


def remember(repo: Repository, idem: Idempotency | None, status: int, outcome: NoticeOutcome,
             now: datetime) -> None:
    """Inside the use case's transaction: store the result under the Idempotency-Key (if there is one)."""
    if idem is not None:
        repo.put_idempotent(idem.party_id, idem.key, idem.request_hash, status, outcome.model_dump_json(), now)
