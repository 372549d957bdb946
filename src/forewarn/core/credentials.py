"""Party credentials and what a caller may do: scopes, client credentials (secrets stored only as scrypt hashes),
the principal of a request. Pure: no I/O.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from forewarn.core.scopes import DEFAULT_SCOPES, SCOPES
from forewarn.errors import Forbidden, InvalidInput, Unauthenticated

__all__ = ["DEFAULT_SCOPES", "SCOPES", "Credential", "PartyAccess", "Principal", "admit", "cap_scopes",
           "check_scopes", "hash_secret", "new_credential", "verify_secret"]


class Credential(BaseModel):
    """A party's client credentials: the id, the scrypt hash of the secret, the scopes granted."""

    model_config = ConfigDict(frozen=True)

    client_id: str
    party_id: str
    secret_hash: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class Principal:
    """Who is calling: a party and the scopes of its token."""

    party_id: str
    scopes: frozenset[str]
    token_id: str = ""
    external: bool = False
    """Signed by a trusted external issuer (its scopes still need :func:`cap_scopes`), not by the service."""
    client_id: str = ""
    """The credentials the service issued the token for (its ``cid`` claim); empty for an external token."""

    def require(self, scope: str) -> None:
        """Raise :class:`Forbidden` unless the token carries ``scope`` (admin carries every scope)."""
        if scope not in self.scopes and "admin" not in self.scopes:
            raise Forbidden(f"this token lacks the '{scope}' scope", {"required_scope": scope})


@dataclass(frozen=True)
class PartyAccess:
    """What the store says of a party when one of its tokens is presented: when it was disabled (UTC; None while
    enabled) and its credentials (revoked ones included)."""

    disabled_at: datetime | None
    credentials: tuple[Credential, ...] = ()


def admit(who: Principal, access: PartyAccess | None) -> Principal:
    """The principal a verified token may act as, given the store's word on its party (checked on every request):

    * an unknown or disabled party: refused, whoever issued the token;
    * a token issued for a credential (``client_id``): refused once that credential is revoked;
    * a token of a trusted external issuer: its scopes capped at the party's unrevoked credentials
      (:func:`cap_scopes`), so revoking them all leaves it nothing.
    """
    if access is None:
        raise Unauthenticated("the token's subject is not a known party")
    if access.disabled_at is not None:
        raise Unauthenticated(f"party {who.party_id} is disabled", {"disabled_at": access.disabled_at.isoformat()})
    if who.client_id:
        cred = next((c for c in access.credentials if c.client_id == who.client_id), None)
        if cred is None or cred.revoked_at is not None:
            raise Unauthenticated("the credentials this token was issued for are revoked",
                                  {"client_id": who.client_id})
    if who.external:
        return replace(who, scopes=cap_scopes(who.scopes, access.credentials))
    return who


def check_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Validate scope names; unknown ones are an error."""
    out = tuple(dict.fromkeys(scopes))
    unknown = [s for s in out if s not in SCOPES]
    if unknown or not out:
        raise InvalidInput(f"unknown or missing scopes {unknown}; choose from {', '.join(SCOPES)}")
    return out


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    """scrypt(secret) as 'scrypt$salt$hash' (base64)."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def verify_secret(secret: str, stored: str) -> bool:
    """Constant-time check of a secret against its stored hash."""
    try:
        scheme, salt_b64, _ = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    return hmac.compare_digest(hash_secret(secret, base64.b64decode(salt_b64)), stored)


def new_credential(party_id: str, scopes: Iterable[str], now: datetime) -> tuple[Credential, str]:
    """A fresh client id and secret for ``party_id``; the secret is returned once and stored only hashed."""
    secret = secrets.token_urlsafe(32)
    cred = Credential(client_id=f"{party_id}.{secrets.token_hex(6)}", party_id=party_id,
                      secret_hash=hash_secret(secret), scopes=check_scopes(scopes), created_at=now)
    return cred, secret


def cap_scopes(requested: Iterable[str], credentials: Iterable[Credential]) -> frozenset[str]:
    """The scopes of an external token that the party's own credentials allow: each requested scope held by one
    of its unrevoked credentials (a credential with ``admin`` allows every scope). No credential, no scope."""
    held: set[str] = set()
    for cred in credentials:
        if cred.revoked_at is None:
            held.update(SCOPES if "admin" in cred.scopes else cred.scopes)
    return frozenset(s for s in requested if s in held)
