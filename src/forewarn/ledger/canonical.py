"""Canonical JSON (RFC 8785, the JSON Canonicalization Scheme) and the digests built on it.

Every hash and signature in the ledger is taken over the JCS form of a JSON value: object keys sorted by
UTF-16 code units, no whitespace, UTF-8, numbers in the ECMAScript shortest form (``5.0`` is written ``5``).
The serialisation is the well-kept ``rfc8785`` package; values must be JSON values (dict with string keys,
list, str, int within +-(2**53 - 1), finite float, bool, None): dump pydantic models with ``mode="json"`` first.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import rfc8785

from forewarn.errors import InvalidInput


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of a JSON value (raises :class:`InvalidInput` for non-JSON values)."""
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise InvalidInput(f"not a canonicalisable JSON value: {exc}") from exc


def sha256_hex(data: bytes) -> str:
    """SHA-256 of ``data`` as 64 lowercase hex digits."""
    return hashlib.sha256(data).hexdigest()


def digest(value: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of ``value``."""
    return sha256_hex(canonical_json(value))


def parse_canonical(text: str | bytes) -> Any:
    """A JSON value from text (any formatting; re-canonicalise it to hash it)."""
    return json.loads(text)


def b64url(data: bytes) -> str:
    """Unpadded base64url text (RFC 4648 section 5), as JOSE uses for keys and signatures."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    """Bytes of unpadded (or padded) base64url text; :class:`InvalidInput` if it is not base64url."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise InvalidInput("not base64url text") from exc
