"""Webhook signatures per the Standard Webhooks specification (https://www.standardwebhooks.com), asymmetric
scheme ``v1a``: the service signs with its Ed25519 key, and any receiver verifies with the public key published at
``GET /v1/keys`` (no shared secret per party, so a party cannot forge another's deliveries).

Headers (besides Forewarn's own ``Forewarn-Signature``, kept for existing receivers)::

    webhook-id: <the delivery id, stable across retries: de-duplicate on it>
    webhook-timestamp: <UNIX seconds, UTC>
    webhook-signature: v1a,<standard base64 of the Ed25519 signature of "<id>.<timestamp>.<body>">

The signature header may carry several space-separated signatures (e.g. during a key rotation); one valid one is
enough. The symmetric ``v1`` (HMAC) scheme of the same specification, which the ``standardwebhooks`` package
implements, needs a secret shared with each receiver; Forewarn does not keep such secrets.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from forewarn.service.tokens import IssuerKey

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
TOLERANCE_S = 300
"""The specification's default: a message whose timestamp is further than this from now is refused (replay)."""


def _signed_content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    return f"{msg_id}.{timestamp}.".encode() + body


def standard_headers(msg_id: str, body: bytes, key: IssuerKey, timestamp: int | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body`` sent as message ``msg_id``."""
    t = int(time.time()) if timestamp is None else timestamp
    signature = key.private.sign(_signed_content(msg_id, t, body))
    return {ID_HEADER: msg_id, TIMESTAMP_HEADER: str(t),
            SIGNATURE_HEADER: "v1a," + base64.b64encode(signature).decode("ascii")}


def public_keys(jwks: Mapping[str, Any]) -> list[Ed25519PublicKey]:
    """The Ed25519 keys of the service's JWKS (``GET /v1/keys``)."""
    out = []
    for jwk in jwks.get("keys", []):
        if jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519":
            raw = base64.urlsafe_b64decode(str(jwk["x"]) + "=" * (-len(str(jwk["x"])) % 4))
            out.append(Ed25519PublicKey.from_public_bytes(raw))
    return out


def verify_standard(body: bytes, headers: Mapping[str, str], keys: Iterable[Ed25519PublicKey],
                    tolerance_s: float | None = TOLERANCE_S, now: float | None = None) -> bool:
    """Whether a received webhook carries a valid ``v1a`` signature by one of ``keys`` over its id, timestamp and
    exact body bytes, with a timestamp within ``tolerance_s`` seconds of ``now`` (receiver side). Header names are
    matched case-insensitively."""
    lower = {k.lower(): v for k, v in headers.items()}
    try:
        msg_id, t = lower[ID_HEADER], int(lower[TIMESTAMP_HEADER])
        candidates = [s.split(",", 1)[1] for s in lower[SIGNATURE_HEADER].split() if s.startswith("v1a,")]
    except (KeyError, ValueError, IndexError):
        return False
    if tolerance_s is not None and abs((time.time() if now is None else now) - t) > tolerance_s:
        return False
    content = _signed_content(msg_id, t, body)
    keys = list(keys)
    for encoded in candidates:
        try:
            signature = base64.b64decode(encoded, validate=True)
        except ValueError:
            continue
        for key in keys:
            try:
                key.verify(signature, content)
                return True
            except InvalidSignature:
                continue
    return False
