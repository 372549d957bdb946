"""Party keys and party signatures over submissions (no I/O).

A party may register Ed25519 public keys (raw 32 bytes, base64url, or a PEM ``PUBLIC KEY``) and sign what it
submits. A key has a history: ``valid_from`` (when it was registered) and ``revoked_at`` (when it was revoked
or rotated away); it verifies a submission made at ``t`` only if ``valid_from <= t < revoked_at``. Times UTC.

What a party signs is a small **signing form**, canonicalised with RFC 8785 (:mod:`forewarn.ledger.canonical`)::

    {"forewarn": "signed-request/1", "party_id": ..., "key_id": ..., "nonce": ...,
     "method": "POST", "path": "/v1/operations", "body_sha256": sha256(JCS(request body as JSON))}

The signature is a detached Ed25519 signature over those bytes, sent base64url. The nonce makes each signed
form single-use (a replay is refused); the body enters only through its digest, so a stored signature never
carries the planning detail of the body it signed. An empty request body is taken as ``{}``.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field

from forewarn.errors import InvalidInput
from forewarn.ledger.canonical import b64url, canonical_json, digest, unb64url

SIGNED_REQUEST = "signed-request/1"
"""Version tag of the signing form."""


class PartyKey(BaseModel):
    """One Ed25519 public key of a party, with its history (UTC)."""

    model_config = ConfigDict(frozen=True)

    key_id: str = Field(description="'ed25519:' + the first 32 hex digits of SHA-256 of the raw public key")
    party_id: str
    public_key: str = Field(description="raw 32-byte Ed25519 public key, base64url without padding")
    valid_from: datetime
    revoked_at: datetime | None = None
    replaces: str | None = Field(default=None, description="the key this one rotated away, if any")

    def valid_at(self, at: datetime) -> bool:
        """Whether the key verifies a submission made at ``at``."""
        return self.valid_from <= at and (self.revoked_at is None or at < self.revoked_at)


class PartySignature(BaseModel):
    """A party's detached signature over the signing form of one submission (see module docstring).

    ``body`` is the submitted JSON body; it is needed to check the signature against the submission and is
    **not** kept in the ledger (only ``body_sha256`` is). ``public_key`` is filled in by the service from the
    party's registered key when it accepts the signature, so a stored entry can be checked offline."""

    model_config = ConfigDict(frozen=True)

    party_id: str
    key_id: str = Field(min_length=1, max_length=100)
    nonce: str = Field(min_length=8, max_length=200)
    method: str = Field(min_length=1, max_length=10)
    path: str = Field(min_length=1, max_length=500)
    body_sha256: str = Field(pattern="^[0-9a-f]{64}$")
    signature: str = Field(min_length=1, max_length=200, description="Ed25519 signature, base64url")
    public_key: str | None = None
    body: dict[str, Any] | None = Field(default=None, exclude=True)

    def form(self) -> dict[str, str]:
        """The signing form these fields describe."""
        return signing_form(self.party_id, self.key_id, self.nonce, self.method, self.path, self.body_sha256)

    def stored(self, public_key: str) -> PartySignature:
        """The form kept in the ledger: without the body, with the verifying public key."""
        return self.model_copy(update={"public_key": public_key, "body": None})


def signing_form(party_id: str, key_id: str, nonce: str, method: str, path: str, body_sha256: str) -> dict[str, str]:
    """The JSON object a party signs (canonicalised with RFC 8785 before signing)."""
    return {"forewarn": SIGNED_REQUEST, "party_id": party_id, "key_id": key_id, "nonce": nonce,
            "method": method.upper(), "path": path, "body_sha256": body_sha256}


def body_digest(body: dict[str, Any] | None) -> str:
    """SHA-256 (hex) of the canonical JSON of a request body (``None`` counts as ``{}``)."""
    return digest({} if body is None else body)


def load_public_key(text: str) -> Ed25519PublicKey:
    """An Ed25519 public key from base64url raw bytes or a PEM ``PUBLIC KEY``; :class:`InvalidInput` otherwise."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode())
            if not isinstance(key, Ed25519PublicKey):
                raise InvalidInput("the key must be an Ed25519 public key")
            return key
        raw = unb64url(text)
        if len(raw) != 32:
            raise InvalidInput("an Ed25519 public key is 32 bytes (base64url)")
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise InvalidInput(f"not an Ed25519 public key: {exc}") from exc


def raw_public(key: Ed25519PublicKey) -> str:
    """base64url of the raw 32 bytes of a public key."""
    return b64url(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def key_id_of(key: Ed25519PublicKey) -> str:
    """The key id: 'ed25519:' + the first 32 hex digits of SHA-256 of the raw public key (a fingerprint)."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:32]


def verify_party_signature(sig: PartySignature, public_key: str) -> bool:
    """Whether ``sig.signature`` is a valid Ed25519 signature of ``sig``'s signing form under ``public_key``."""
    try:
        key = load_public_key(public_key)
        key.verify(unb64url(sig.signature), canonical_json(sig.form()))
    except (InvalidSignature, InvalidInput):
        return False
    return True


def sign_request(private: Ed25519PrivateKey, party_id: str, method: str, path: str, body: dict[str, Any] | None,
                 nonce: str | None = None, key_id: str | None = None) -> PartySignature:
    """Client side: sign a submission (what a party's software does before sending it). The nonce defaults to
    a fresh random one; the key id to the public key's fingerprint."""
    kid = key_id or key_id_of(private.public_key())
    nonce = nonce or secrets.token_urlsafe(18)
    body_sha = body_digest(body)
    form = signing_form(party_id, kid, nonce, method, path, body_sha)
    signature = b64url(private.sign(canonical_json(form)))
    return PartySignature(party_id=party_id, key_id=kid, nonce=nonce, method=method.upper(), path=path,
                          body_sha256=body_sha, signature=signature, body=body if body is not None else {})
