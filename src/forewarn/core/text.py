"""Text shown to people (names of parties, sites and agreements): what it may hold. Pure."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, ValidationInfo

UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
"""Characters a name may not hold: C0 and C1 controls (escape sequences, carriage returns), bidirectional
overrides, embeddings, isolates and marks (which reorder what a terminal or page shows), zero-width characters
and line/paragraph separators."""


STORED: dict[str, Any] = {"stored": True}
"""Validation context of records read back from a store: names stored before :data:`UNPRINTABLE` was enforced
still load (and are escaped where they are shown), so a store is never unreadable for them."""


def _printable(value: str, info: ValidationInfo) -> str:
    if isinstance(info.context, dict) and info.context.get("stored"):
        return value
    bad = UNPRINTABLE.search(value)
    if bad is not None:
        raise ValueError(f"control or bidirectional character U+{ord(bad.group()):04X} at position {bad.start()} "
                         f"is not allowed in a name (names are shown on operators' terminals and pages)")
    return value


PrintableText = Annotated[str, AfterValidator(_printable)]
"""Text shown to people (names): no control, bidirectional-override or zero-width characters (:data:`UNPRINTABLE`)."""
