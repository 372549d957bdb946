"""Webhooks: bodies signed with the service's Ed25519 key, so a receiver can verify they came from Forewarn.

Headers sent with every delivery::

    Content-Type: application/json
    Forewarn-Delivery-Id: <stable id, the same on every retry: de-duplicate on it>
    Forewarn-Signature: t=<unix seconds>,kid=<key id>,ed25519=<base64url signature of "<t>.<body>">
    webhook-id, webhook-timestamp, webhook-signature: the Standard Webhooks headers, scheme v1a
    (:mod:`forewarn.notify.standard_webhooks`)

The public key is published as a JWKS at ``GET /v1/keys``; :func:`verify_signature` is what a receiver runs.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from forewarn.core.records import Delivery
from forewarn.errors import InvalidInput
from forewarn.notify.standard_webhooks import standard_headers
from forewarn.service.tokens import IssuerKey
from forewarn.service.webhook_urls import PinnedTarget, WebhookPolicy, check_webhook_url, pin

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


@dataclass(frozen=True)
class Attempt:
    """The outcome of one webhook attempt: delivered, the error, and whether retrying is pointless (the URL is
    refused by the policy: the delivery stays in the inbox and the stream)."""

    ok: bool
    error: str | None = None
    permanent: bool = False


async def pin_url(url: str, policy: WebhookPolicy) -> PinnedTarget:
    """Resolve ``url``'s host once (without blocking the event loop) and pin it; InvalidInput when refused."""
    parts = urlsplit(url)
    check_webhook_url(url, policy)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    infos = await asyncio.get_running_loop().getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    return pin(url, policy, list(dict.fromkeys(str(info[4][0]) for info in infos)))


async def post(client: httpx.AsyncClient, url: str, delivery: Delivery, key: IssuerKey, policy: WebhookPolicy,
               max_redirects: int = 0) -> Attempt:
    """POST one delivery to ``url``, connecting to the address its host resolved to (Host header and TLS SNI
    keep the name; the certificate is checked against it). Any 2xx counts as delivered. Redirects: 307 and 308
    are followed up to ``max_redirects`` times, each target checked like the first; any other 3xx fails."""
    body = delivery_body(delivery)
    headers = {"Content-Type": "application/json", DELIVERY_HEADER: delivery.id, SIGNATURE_HEADER: sign(body, key),
               **standard_headers(delivery.id, body, key)}
    for _ in range(max_redirects + 1):
        try:
            target = await pin_url(url, policy)
        except InvalidInput as exc:
            return Attempt(False, f"refused: {exc.message}"[:500], permanent=True)
        except OSError as exc:
            return Attempt(False, f"DNS: {exc}"[:500])
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        try:
            response = await client.post(target.pinned_url(), content=body,
                                         headers={**headers, "Host": target.host_header()}, extensions=extensions)
        except httpx.HTTPError as exc:
            return Attempt(False, f"{type(exc).__name__}: {exc}"[:500])
        if 200 <= response.status_code < 300:
            return Attempt(True)
        location = response.headers.get("location")
        if response.status_code not in (307, 308) or not location:
            return Attempt(False, f"HTTP {response.status_code}")
        url = urljoin(url, location)
    return Attempt(False, f"HTTP {response.status_code}: more than {max_redirects} redirects (webhook_max_redirects)")
