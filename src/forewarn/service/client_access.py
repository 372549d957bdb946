"""Access use cases: the service's token-signing key, client credentials checked against their stored hashes,
the credentials of a party (they cap the scopes of external tokens), and refused attempts recorded in the ledger.
Times are timezone-aware UTC."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache

from forewarn.core.credentials import Credential, hash_secret, verify_secret
from forewarn.service.group_commit import GroupCommit
from forewarn.service.ledger import Draft, Ledger
from forewarn.service.tokens import IssuerKey
from forewarn.store.repository import Repository


@cache
def dummy_secret_hash() -> str:
    """Checked against when the client id is unknown or revoked, so that the answer costs what a wrong secret
    costs (one scrypt) and its timing does not tell which client ids exist."""
    return hash_secret("no such client", b"forewarn-dummy-s")


def issuer_key(repo: Repository, now: datetime) -> IssuerKey:
    """The service's signing key: loaded from the store, or generated and stored at the first start."""
    stored = repo.get_issuer_key()
    if stored is not None:
        return IssuerKey.from_pem(*stored)
    key = IssuerKey.generate()
    with repo.transaction():
        repo.put_issuer_key(key.kid, key.private_pem(), now)
    return key


class Access:
    """Credentials and keys (a part of :class:`~forewarn.service.notices.Forewarn`)."""

    repo: Repository
    ledger: Ledger
    commits: GroupCommit

    def issuer_key(self, now: datetime) -> IssuerKey:
        """The service's token-signing key (created and stored at ``now`` on the first start)."""
        return issuer_key(self.repo, now)

    def credentials_of(self, party_id: str) -> list[Credential]:
        """The party's client credentials (revoked ones included, with ``revoked_at``)."""
        return self.repo.list_credentials(party_id)

    def client_credential(self, client_id: str, client_secret: str) -> Credential | None:
        """The unrevoked credentials of ``client_id`` if the secret matches, else None; one scrypt whatever the
        outcome."""
        cred = self.repo.get_credential(client_id)
        usable = cred is not None and cred.revoked_at is None
        stored = cred.secret_hash if cred is not None and usable else dummy_secret_hash()
        ok = verify_secret(client_secret, stored)
        return cred if ok and usable else None

    def record_rejections(self, drafts: Sequence[Draft], now: datetime) -> None:
        """Append refused attempts (``rejection`` drafts) to the ledger at ``now``, in one transaction."""
        if drafts:
            with self.commits.committing(), self.repo.transaction():
                self.ledger.append_many(drafts, now)
