"""Webhooks: bodies signed with the service's Ed25519 key, so a receiver can verify they came from Forewarn.

Headers sent with every delivery::

    Content-Type: application/json
    Forewarn-Delivery-Id: <stable id, the same on every retry: de-duplicate on it>
    Forewarn-Signature: t=<unix seconds>,kid=<key id>,ed25519=<base64url signature of "<t>.<body>">

The public key is published as a JWKS at ``GET /v1/keys``; :func:`verify_signature` is what a receiver runs.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from forewarn.core.records import Delivery
from forewarn.service.tokens import IssuerKey

SIGNATURE_HEADER = "Forewarn-Signature"
DELIVERY_HEADER = "Forewarn-Delivery-Id"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def delivery_body(delivery: Delivery) -> bytes:
    """The JSON body of a webhook delivery: id, sequence, channel, reason, times, payload."""
    doc: dict[str, Any] = {
        "delivery_id": delivery.id, "seq": delivery.seq, "party_id": delivery.party_id, "channel": delivery.channel,
        "reason": delivery.reason, "escalation_of": delivery.escalation_of,
        "created_at": delivery.created_at.isoformat(),
        "ack_deadline": delivery.ack_deadline.isoformat() if delivery.ack_deadline else None,
        "late": delivery.late, "payload": delivery.payload,
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def sign(body: bytes, key: IssuerKey, timestamp: int | None = None) -> str:
    """The ``Forewarn-Signature`` header value for ``body``."""
    t = int(time.time()) if timestamp is None else timestamp
    signature = key.private.sign(f"{t}.".encode() + body)
    return f"t={t},kid={key.kid},ed25519={_b64(signature)}"


def verify_signature(body: bytes, header: str, jwks: dict[str, Any], max_age_s: float | None = 300.0,
                     now: float | None = None) -> bool:
    """Check a ``Forewarn-Signature`` header against the service's published JWKS (receiver side)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        t, kid, sig = int(parts["t"]), parts["kid"], _unb64(parts["ed25519"])
    except (KeyError, ValueError):
        return False
    jwk = next((k for k in jwks.get("keys", []) if k.get("kid") == kid and k.get("crv") == "Ed25519"), None)
    if jwk is None:
        return False
    if max_age_s is not None and abs((time.time() if now is None else now) - t) > max_age_s:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(_unb64(jwk["x"])).verify(sig, f"{t}.".encode() + body)
    except (InvalidSignature, ValueError):
        return False
    return True


def post(client: httpx.Client, url: str, delivery: Delivery, key: IssuerKey) -> tuple[bool, str | None]:
    """POST one delivery; (delivered, error). Any 2xx counts as delivered."""
    body = delivery_body(delivery)
    headers = {"Content-Type": "application/json", DELIVERY_HEADER: delivery.id, SIGNATURE_HEADER: sign(body, key)}
    try:
        response = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return False, f"{type(exc).__name__}: {exc}"[:500]
    if 200 <= response.status_code < 300:
        return True, None
    return False, f"HTTP {response.status_code}"
