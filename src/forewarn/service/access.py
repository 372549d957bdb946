"""Access control use cases (issue 20): disable and re-enable a party, revoke a credential. Each is one
transaction under the writer lock and recorded in the ledger. They take effect at once, in every process: the
token check of every request reads the party's state from the store (:meth:`Repository.party_access` and
:func:`forewarn.core.credentials.admit`), so tokens already issued stop working with the next request."""

from __future__ import annotations

from datetime import datetime

from forewarn.core.credentials import Credential, PartyAccess
from forewarn.errors import InvalidInput, NotFound
from forewarn.service.evaluation import require_aware
from forewarn.service.group_commit import GroupCommit
from forewarn.service.ledger import Ledger
from forewarn.store.repository import Repository


class AccessControl:
    """Disabling parties and revoking credentials (a part of :class:`~forewarn.service.notices.Forewarn`)."""

    repo: Repository
    ledger: Ledger
    commits: GroupCommit

    def party_access(self, party_id: str) -> PartyAccess | None:
        """The party's access state (disabled or not, its credentials), read from the store now: what the token
        check of every request admits against; None for an unknown party."""
        return self.repo.party_access(party_id)

    def disable_party(self, party_id: str, now: datetime, reason: str = "") -> None:
        """Disable ``party_id`` at ``now`` (UTC): none of its tokens is accepted from now on, whoever issued them
        (the service or a trusted external issuer), and its credentials get no new token. Recorded as
        ``party_disabled``. Disabling a disabled party is an error (nothing changes)."""
        require_aware(now)
        with self.commits.committing(), self.repo.transaction():
            access = self.repo.party_access(party_id)
            if access is None:
                raise NotFound(f"no party {party_id}", {"party_id": party_id})
            if access.disabled_at is not None:
                raise InvalidInput(f"party {party_id} is already disabled (since {access.disabled_at.isoformat()})",
                                   {"party_id": party_id})
            self.repo.set_party_disabled(party_id, now)
            self.ledger.append("party_disabled", party_id, {"party_id": party_id, "reason": reason}, now,
                               party_id=party_id)

    def enable_party(self, party_id: str, now: datetime, reason: str = "") -> None:
        """Enable a disabled party again at ``now`` (its unrevoked credentials work again; tokens issued before
        are accepted again until they expire). Recorded as ``party_enabled``."""
        require_aware(now)
        with self.commits.committing(), self.repo.transaction():
            access = self.repo.party_access(party_id)
            if access is None:
                raise NotFound(f"no party {party_id}", {"party_id": party_id})
            if access.disabled_at is None:
                raise InvalidInput(f"party {party_id} is not disabled", {"party_id": party_id})
            self.repo.set_party_disabled(party_id, None)
            self.ledger.append("party_enabled", party_id, {"party_id": party_id, "reason": reason}, now,
                               party_id=party_id)

    def revoke_credential(self, client_id: str, now: datetime, reason: str = "",
                          party_id: str | None = None) -> Credential:
        """Revoke client credentials at ``now`` (UTC): the secret gets no new token and every token issued for
        them is refused from the next request on. With ``party_id``, the credentials must be that party's.
        Recorded as ``credential_revoked``; revoking twice is an error (nothing changes)."""
        require_aware(now)
        with self.commits.committing(), self.repo.transaction():
            cred = self.repo.get_credential(client_id)
            if cred is None or (party_id is not None and cred.party_id != party_id):
                raise NotFound(f"no credentials {client_id}" + (f" of party {party_id}" if party_id else ""),
                               {"client_id": client_id})
            if cred.revoked_at is not None:
                raise InvalidInput(f"credentials {client_id} were already revoked at {cred.revoked_at.isoformat()}",
                                   {"client_id": client_id})
            revoked = cred.model_copy(update={"revoked_at": now})
            self.repo.put_credential(revoked)
            self.ledger.append("credential_revoked", client_id, {
                "client_id": client_id, "party_id": cred.party_id, "scopes": list(cred.scopes), "reason": reason,
            }, now, party_id=cred.party_id)
        return revoked
