"""Tokens: the service's token issuer key, JWTs, and the trusted keys of external issuers.

* A party gets a client id and secret (``forewarn party add``); the secret is stored only as a scrypt hash.
* ``POST /v1/token`` (OAuth2 client credentials) exchanges them for a bearer JWT signed with the service's
  Ed25519 issuer key (``alg`` EdDSA), audience ``Settings.audience``, expiry ``Settings.token_ttl_s``.
* Tokens are checked against the issuer key and any trusted external keys (a JWKS file or PEM files named in
  the settings, Ed25519 or RS256), with issuer, audience, expiry and scopes checked. The token's ``sub`` is the
  party id.
* A trusted external key speaks only for the parties its entry names (``parties``), never with ``admin`` unless
  its entry says ``allow_admin``, and only with scopes its entry allows (``scopes``); the caller then caps the
  scopes at what the party's own credentials allow (:func:`cap_scopes`). A token is never more than a credential.
* Every request also asks the store whether the token's party is disabled and whether the credentials it was
  issued for (claim ``cid``) are revoked (:func:`forewarn.core.credentials.admit`): revocation is immediate.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from forewarn.core.credentials import Principal, check_scopes
from forewarn.errors import InvalidInput, Unauthenticated


@dataclass
class IssuerKey:
    """The service's Ed25519 token-signing key with its key id."""

    kid: str
    private: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> IssuerKey:
        return cls(kid=uuid.uuid4().hex[:16], private=Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, kid: str, pem: str) -> IssuerKey:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the issuer key must be Ed25519")
        return cls(kid=kid, private=key)

    def private_pem(self) -> str:
        return self.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()).decode()

    def public_jwk(self) -> dict[str, Any]:
        raw = self.private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": self.kid, "alg": "EdDSA", "use": "sig"}


def public_key_from_pem(pem: str) -> Ed25519PublicKey:
    """The Ed25519 public key of a recorded service key: a public PEM, or (a legacy row) a private one."""
    key = (serialization.load_pem_private_key(pem.encode(), password=None).public_key() if "PRIVATE KEY" in pem
           else serialization.load_pem_public_key(pem.encode()))
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("a service key must be Ed25519")
    return key


VerifyKey = Ed25519PublicKey | RSAPublicKey


@dataclass(frozen=True)
class TrustedKey:
    """A public key whose tokens are accepted, and what those tokens may assert.

    ``parties`` None means any party (only the service's own issuer key); an external key names the parties its
    identity provider speaks for. ``scopes`` None means no cap of its own beyond :data:`SCOPES`; ``admin`` is
    dropped from an external token unless ``allow_admin``."""

    kid: str
    issuer: str
    key: VerifyKey
    parties: frozenset[str] | None = None
    scopes: frozenset[str] | None = None
    allow_admin: bool = False


@dataclass
class TokenVerifier:
    """Checks bearer tokens: signature (issuer key or trusted keys), issuer, audience, expiry, scopes, and for
    an external issuer the parties and scopes its key may assert."""

    issuer: str
    audience: str
    keys: dict[str, TrustedKey] = field(default_factory=dict)
    """kid -> the key and what its tokens may assert."""

    def add(self, trusted: TrustedKey) -> None:
        self.keys[trusted.kid] = trusted

    def verify(self, token: str, now: datetime) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthenticated("malformed bearer token") from exc
        kid = header.get("kid")
        if kid not in self.keys:
            raise Unauthenticated("token signed with an unknown key")
        trusted = self.keys[kid]
        alg = "EdDSA" if isinstance(trusted.key, Ed25519PublicKey) else "RS256"
        if header.get("alg") != alg:
            raise Unauthenticated(f"token algorithm must be {alg} for this key")
        try:
            claims = jwt.decode(token, trusted.key, algorithms=[alg], audience=self.audience, issuer=trusted.issuer,
                                options={"require": ["exp", "sub", "aud", "iss"], "verify_exp": False})
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"invalid token: {exc}") from exc
        exp, sub, scope = claims["exp"], claims["sub"], claims.get("scope", "")
        if isinstance(exp, bool) or not isinstance(exp, int | float):
            raise Unauthenticated("invalid token: exp must be a number (UNIX seconds)")
        if exp <= now.timestamp():
            raise Unauthenticated("token expired")
        if not isinstance(sub, str) or not isinstance(scope, str):
            raise Unauthenticated("invalid token: sub and scope must be strings")
        if trusted.parties is not None and sub not in trusted.parties:
            raise Unauthenticated(f"key {kid} of issuer {trusted.issuer} may not assert party {sub!r}")
        scopes = frozenset(scope.split())
        if trusted.parties is not None:
            if trusted.scopes is not None:
                scopes &= trusted.scopes
            if not trusted.allow_admin:
                scopes -= {"admin"}
        external = trusted.parties is not None
        cid = "" if external else claims.get("cid", "")
        if not isinstance(cid, str):
            raise Unauthenticated("invalid token: cid must be a string")
        return Principal(party_id=sub, scopes=scopes, token_id=str(claims.get("jti", "")), external=external,
                         client_id=cid)


def issue_token(key: IssuerKey, issuer: str, audience: str, party_id: str, scopes: Iterable[str], now: datetime,
                ttl: timedelta, client_id: str = "") -> str:
    """A bearer JWT for ``party_id`` signed with the issuer key; ``client_id`` (claim ``cid``) names the
    credentials it was issued for, so that revoking them refuses it too."""
    claims: dict[str, Any] = {
        "iss": issuer, "aud": audience, "sub": party_id, "scope": " ".join(scopes),
        "iat": int(now.timestamp()), "exp": int((now + ttl).timestamp()), "jti": uuid.uuid4().hex,
    }
    if client_id:
        claims["cid"] = client_id
    return jwt.encode(claims, key.private, algorithm="EdDSA", headers={"kid": key.kid})


def load_trusted_keys(path: Path) -> list[TrustedKey]:
    """Trusted external keys from a JSON file: ``{"keys": [JWK..., each with "kid", "iss" and "parties"]}`` (a
    JWKS with those members per key) or ``{"pem": [{"kid", "iss", "parties", "pem"}...]}``. Each entry must name
    the parties (``parties``: a non-empty list of party ids) that its issuer may assert; optional ``scopes`` (a
    list) caps the scopes its tokens carry, and ``allow_admin: true`` lets them carry ``admin`` (never by default).
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"cannot read trusted keys file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidInput(f"trusted keys file {path}: expected a JSON object with 'keys' and/or 'pem'")
    out: list[TrustedKey] = []
    for kind in ("keys", "pem"):
        entries = data.get(kind, [])
        if not isinstance(entries, list):
            raise InvalidInput(f"trusted keys file {path}: '{kind}' must be a list")
        for entry in entries:
            out.append(_trusted_entry(path, entry, kind))
    return out


def _trusted_entry(path: Path, entry: Any, kind: str) -> TrustedKey:
    """One entry of the trusted keys file (``kind`` 'keys' for a JWK, 'pem' for a PEM public key)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str) or not isinstance(entry.get("iss"), str):
        raise InvalidInput(f"trusted keys file {path}: every entry needs a string 'kid' and 'iss'")
    kid = entry["kid"]
    where = f"trusted keys file {path}, key {kid}"
    parties = entry.get("parties")
    if not isinstance(parties, list) or not parties or not all(isinstance(p, str) and p for p in parties):
        raise InvalidInput(f"{where}: 'parties' must list the party ids this issuer may assert (a non-empty list)")
    scopes = entry.get("scopes")
    if scopes is not None and (not isinstance(scopes, list) or not all(isinstance(x, str) for x in scopes)):
        raise InvalidInput(f"{where}: 'scopes' must be a list of scope names")
    allow_admin = entry.get("allow_admin", False)
    if not isinstance(allow_admin, bool):
        raise InvalidInput(f"{where}: 'allow_admin' must be true or false")
    try:
        key = (jwt.PyJWK(entry).key if kind == "keys"
               else serialization.load_pem_public_key(str(entry.get("pem", "")).encode()))
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise InvalidInput(f"{where}: not a readable public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey | RSAPublicKey):
        raise InvalidInput(f"{where}: only Ed25519 and RSA public keys are accepted")
    return TrustedKey(kid=kid, issuer=entry["iss"], key=key, parties=frozenset(parties),
                      scopes=None if scopes is None else frozenset(check_scopes(scopes)), allow_admin=allow_admin)
