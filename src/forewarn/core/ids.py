"""The one definition of identifiers: operation, party, site, agreement, subscription and delivery ids.

Every face validates ids against these (the pydantic models of :mod:`forewarn.core.model`, the HTTP request
bodies and path/query parameters, the operations-centre page's form), so an id accepted in one place is accepted
in all of them.
"""

from __future__ import annotations

import re

ID_PATTERN = r"^[a-z0-9][a-z0-9_.:-]{0,63}$"
"""Identifiers: lowercase letters, digits and ``_.:-``, 1-64 characters, starting with a letter or digit."""

ID_MAX_LENGTH = 64
"""The longest identifier (characters)."""

ID_RULE = "lowercase letters, digits, '_', '.', ':', '-'; 1-64 chars, starting with a letter or digit"
""":data:`ID_PATTERN` in words, for error messages and parameter descriptions."""

ACTIVITY_CLASS_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
"""Activity classes (``bomber_route``, ``isr_orbit``, ...): a lowercase letter, then letters, digits or ``_``."""

IDENTIFIER = re.compile(ID_PATTERN)
""":data:`ID_PATTERN` compiled."""


def check_identifier(value: str) -> str:
    """``value`` if it is an identifier, else ``ValueError`` naming the rule (a pydantic field validator)."""
    if not IDENTIFIER.match(value):
        raise ValueError(f"{value!r} is not a valid identifier ({ID_RULE})")
    return value
