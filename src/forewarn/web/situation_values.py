"""Display text of the untrusted property values of the exported situation map, and strict JSON of them.

Nothing here writes HTML (the Jinja2 template of :mod:`forewarn.web.mapview` escapes it). Units shown: altitudes
in metres above the WGS84 ellipsoid with an approximate flight level (FL = metres / 0.3048 / 100, standard
atmosphere, no QNH or geoid correction), distances in metres or kilometres, durations in seconds, times UTC.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from forewarn.units import FOOT_M


def as_float(value: object) -> float | None:
    """A finite float from an int/float/numeric string, else ``None`` (booleans are not numbers)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def as_text(value: object) -> str:
    """Display text for a property value: ``None`` and empty strings become an empty string."""
    if value is None:
        return ""
    return str(value)


def fmt_number(value: object, digits: int = 0) -> str:
    """``1,234.5``-style number, or the raw text if the value is not numeric."""
    number = as_float(value)
    if number is None:
        return as_text(value)
    return f"{number:,.{digits}f}"


def fmt_altitude(value: object) -> str:
    """Altitude in metres above the WGS84 ellipsoid with its approximate flight level: ``3,048 m (FL100)``."""
    metres = as_float(value)
    if metres is None:
        return as_text(value)
    flight_level = round(metres / FOOT_M / 100.0)
    fl_text = f"FL{flight_level:03d}" if flight_level >= 0 else f"FL-{abs(flight_level):03d}"
    return f"{metres:,.0f} m ({fl_text})"


def fmt_distance(value: object) -> str:
    """Distance given in metres: ``850 m`` or ``12.4 km (12,400 m)``."""
    metres = as_float(value)
    if metres is None:
        return as_text(value)
    if abs(metres) < 1000.0:
        return f"{metres:,.0f} m"
    return f"{metres / 1000.0:,.1f} km ({metres:,.0f} m)"


def fmt_duration(value: object) -> str:
    """Duration given in seconds: ``5,400 s (1 h 30 min)``."""
    seconds = as_float(value)
    if seconds is None:
        return as_text(value)
    whole = round(abs(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = []
    if hours:
        parts.append(f"{hours} h")
    if minutes:
        parts.append(f"{minutes} min")
    if secs or not parts:
        parts.append(f"{secs} s")
    return f"{seconds:,.0f} s ({' '.join(parts)})"


def fmt_utc(value: object) -> str:
    """ISO 8601 instant shown in UTC (``2015-11-17 06:30:00Z``); unparsable or naive values shown as given."""
    if not isinstance(value, str) or not value:
        return as_text(value)
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        return value
    if instant.tzinfo is None:
        return value
    return instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def jsonable(value: object) -> Any:
    """A copy of ``value`` that :func:`json.dumps` can write as strict JSON (non-finite numbers -> null)."""
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return str(value)
