"""Canonical JSON (RFC 8785, the JSON Canonicalization Scheme) and the digests built on it.

Every hash and signature in the ledger is taken over the JCS form of a JSON value: object keys sorted by
UTF-16 code units, no whitespace, UTF-8, numbers in the ECMAScript shortest form (``5.0`` is written ``5``).
The reference serialisation is the well-kept ``rfc8785`` package; values must be JSON values (dict with string
keys, list, str, int within +-(2**53 - 1), finite float, bool, None): dump pydantic models with ``mode="json"``.

A fast path gives the same bytes with ``orjson`` (sorted keys, compact, UTF-8, strings escaped as RFC 8785
escapes them: quote, backslash, the five short escapes and ``\\u00xx`` for other control characters; floats in
the shortest form that reads back, as Python's ``repr`` and ECMAScript write them) after rewriting the only
values where they and ECMAScript print differently: integral floats up to 2**53 - 1 become ints (``5.0`` ->
``5``, ``-0.0`` -> ``0``). Integral floats from 2**53 up (ECMAScript pads the shortest digits with zeros
below 1e21 and writes ``1e+21`` from there), floats below 1e-4 in magnitude (Python writes ``1e-05``,
ECMAScript ``0.00001``), keys outside the Basic Multilingual Plane (UTF-16 order differs from code-point order
there), and anything else unusual go to ``rfc8785``. Tests check that the two agree on random JSON values.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import orjson

from forewarn.errors import InvalidInput


class _Slow(Exception):
    """The fast path cannot be sure: use the reference serialiser."""


_INT_LIMIT = 2**53 - 1
_INF = float("inf")


def _float(value: float) -> float | int:
    if value != value or value in (_INF, -_INF):
        raise _Slow
    magnitude = abs(value)
    if value.is_integer():
        if magnitude <= _INT_LIMIT:
            return int(value)
        # ECMAScript pads the shortest digits with zeros up to 1e21 and writes 1e+21 from there; orjson writes
        # 1.2e16 and 1e21
        raise _Slow
    if magnitude < 1e-4:
        raise _Slow
    return value


def _key(k: object) -> str:
    if type(k) is not str or (not k.isascii() and any(ord(c) > 0xFFFF for c in k)):
        raise _Slow
    return k


def _plain(value: Any) -> Any:
    """``value`` with floats rewritten so that Python's JSON encoder prints them as ECMAScript does (exact
    type checks, most frequent first: this walk is the hot part of hashing a ledger entry)."""
    t = type(value)
    if t is float:
        return _float(value)
    if t is str or t is bool or value is None:
        return value
    if t is list:
        return [_float(v) if type(v) is float else _plain(v) for v in value]
    if t is dict:
        return {_key(k): _float(v) if type(v) is float else _plain(v) for k, v in value.items()}
    if t is int:
        if -_INT_LIMIT <= value <= _INT_LIMIT:
            return value
        raise _Slow
    if t is tuple:
        return [_plain(v) for v in value]
    raise _Slow


def reference_canonical_json(value: Any) -> bytes:
    """RFC 8785 bytes from the ``rfc8785`` package (the slow, obvious path; imported only when needed)."""
    import rfc8785

    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise InvalidInput(f"not a canonicalisable JSON value: {exc}") from exc


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of a JSON value (raises :class:`InvalidInput` for non-JSON values)."""
    try:
        plain = _plain(value)
    except _Slow:
        return reference_canonical_json(value)
    try:
        return orjson.dumps(plain, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:  # e.g. a lone surrogate, which is no UTF-8
        return reference_canonical_json(value)


def sha256_hex(data: bytes) -> str:
    """SHA-256 of ``data`` as 64 lowercase hex digits."""
    return hashlib.sha256(data).hexdigest()


def digest(value: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of ``value``."""
    return sha256_hex(canonical_json(value))


def _number(text: str) -> int | float:
    value = int(text)
    return value if -_INT_LIMIT <= value <= _INT_LIMIT else float(text)


def parse_canonical(text: str | bytes) -> Any:
    """A JSON value from text (any formatting; re-canonicalise it to hash it). An integer beyond
    +-(2**53 - 1) is read as the float it must have been: canonical JSON writes the float ``1e16`` as
    ``10000000000000000``, and only a float may hold such a value (so the value re-canonicalises to the same
    bytes instead of being refused)."""
    return json.loads(text, parse_int=_number)


def b64url(data: bytes) -> str:
    """Unpadded base64url text (RFC 4648 section 5), as JOSE uses for keys and signatures."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    """Bytes of unpadded (or padded) base64url text; :class:`InvalidInput` if it is not base64url."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise InvalidInput("not base64url text") from exc
