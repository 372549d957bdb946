"""Standard Webhooks signatures (scheme v1a, Ed25519), checked against the specification's signed content
``<id>.<timestamp>.<body>`` computed independently here with the public key."""

from __future__ import annotations

import base64

import pytest
from cryptography.exceptions import InvalidSignature

from forewarn.notify.standard_webhooks import public_keys, standard_headers, verify_standard
from forewarn.service.tokens import IssuerKey

KEY = IssuerKey.generate()
BODY = b'{"delivery_id":"d-1","kind":"notice"}'
NOW = 1_700_000_000


def test_headers_follow_the_specification() -> None:
    h = standard_headers("d-1", BODY, KEY, timestamp=NOW)
    assert h["webhook-id"] == "d-1" and h["webhook-timestamp"] == str(NOW)
    scheme, encoded = h["webhook-signature"].split(",", 1)
    assert scheme == "v1a"
    signature = base64.b64decode(encoded, validate=True)  # standard base64, as the specification says
    KEY.private.public_key().verify(signature, b"d-1." + str(NOW).encode() + b"." + BODY)
    with pytest.raises(InvalidSignature):
        KEY.private.public_key().verify(signature, b"d-1." + str(NOW).encode() + b"." + BODY + b" ")


def test_verification_with_the_published_jwks() -> None:
    keys = public_keys({"keys": [KEY.public_jwk(), {"kty": "RSA", "kid": "other"}]})
    assert len(keys) == 1
    h = standard_headers("d-1", BODY, KEY, timestamp=NOW)
    assert verify_standard(BODY, h, keys, now=NOW + 10)
    assert verify_standard(BODY, {k.upper(): v for k, v in h.items()}, keys, now=NOW)  # header names any case
    assert not verify_standard(BODY + b" ", h, keys, now=NOW)  # a changed body
    assert not verify_standard(BODY, h | {"webhook-id": "d-2"}, keys, now=NOW)  # another message id
    assert not verify_standard(BODY, h, keys, now=NOW + 301)  # too old: a replay
    assert not verify_standard(BODY, h, public_keys({"keys": [IssuerKey.generate().public_jwk()]}), now=NOW)
    assert not verify_standard(BODY, {"webhook-id": "d-1"}, keys, now=NOW)  # headers missing
    rotated = h | {"webhook-signature": "v1a,AAAA " + h["webhook-signature"]}  # several signatures: one suffices
    assert verify_standard(BODY, rotated, keys, now=NOW)
