"""The scopes a credential or token can carry: the one list (the API schema, the token checks, the CLI help and
the docs all read it from here)."""

from __future__ import annotations

from typing import Literal, get_args

Scope = Literal["notices:file", "read", "ack", "sites:register", "tracks:feed", "keys:manage", "admin"]
"""A scope name (the type the API's request schemas use)."""

SCOPES: tuple[Scope, ...] = get_args(Scope)
"""Every scope, in order."""

SCOPE_HELP: dict[Scope, str] = {
    "notices:file": "file, amend, activate, complete and cancel the party's notices",
    "read": "read operations, sites, deliveries, the situation, the ledger head; manage subscriptions",
    "ack": "acknowledge deliveries",
    "sites:register": "register protected sites",
    "tracks:feed": "feed live track positions",
    "keys:manage": "register, rotate and revoke the party's ledger signing keys",
    "admin": "every scope, for every party: parties, credentials, agreements, revocation, verification",
}
"""What each scope allows (shown in the CLI help and docs/security.md)."""

DEFAULT_SCOPES: tuple[Scope, ...] = ("notices:file", "read", "ack", "tracks:feed")
"""Scopes of new credentials when none are asked for (``keys:manage`` and ``admin`` are granted explicitly)."""

PARTY_SCOPES: tuple[Scope, ...] = tuple(s for s in SCOPES if s != "admin")
"""Every scope but ``admin``: what the demo scenario's parties get."""
