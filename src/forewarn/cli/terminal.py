"""Text from the store made safe for an operator's terminal: what ``forewarn list`` shows of names and other
stored strings. Stored text may predate the name checks of :mod:`forewarn.core.model` (or come from a field
without them), so nothing stored reaches the terminal raw."""

from __future__ import annotations

from rich.text import Text

from forewarn.core.text import UNPRINTABLE


def escaped(value: str) -> str:
    """``value`` with every character that is not printable (C0/C1 controls such as ESC, bidirectional
    overrides and isolates, zero-width and other format characters, separators other than the space) written
    as a Python-style escape (``\\x1b``, ``\\u202e``); printable text, accents and other scripts unchanged."""
    if value.isprintable() and UNPRINTABLE.search(value) is None:
        return value
    out = []
    for ch in value:
        if ch.isprintable() and UNPRINTABLE.match(ch) is None:
            out.append(ch)
        else:
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}" if ord(ch) < 0x10000
                       else f"\\U{ord(ch):08x}")
    return "".join(out)


def cell(value: object) -> Text:
    """A table cell: the value's text :func:`escaped`, never read as rich markup (``[red]`` stays literal)."""
    return Text(escaped(str(value)))
