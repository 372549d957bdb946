"""Unit helpers. Forewarn stores altitudes in metres and distances in metres, always.

Altitudes are metres above the WGS84 ellipsoid. Flight levels are pressure altitudes in hundreds of
feet; Forewarn converts them with the standard atmosphere approximation FL x 100 ft, which ignores
the local QNH and the geoid: good enough for planning volumes, stated wherever it is used.
"""

from __future__ import annotations

FOOT_M = 0.3048
"""One international foot in metres (exact)."""

NAUTICAL_MILE_M = 1852.0
"""One international nautical mile in metres (exact)."""

KNOT_MPS = NAUTICAL_MILE_M / 3600.0
"""One knot in metres per second."""


def feet_to_m(feet: float) -> float:
    """Feet to metres."""
    return feet * FOOT_M


def m_to_feet(metres: float) -> float:
    """Metres to feet."""
    return metres / FOOT_M


def fl_to_m(flight_level: float) -> float:
    """Flight level (hundreds of feet, standard pressure) to metres: FL350 -> 10,668 m."""
    return flight_level * 100.0 * FOOT_M


def m_to_fl(metres: float) -> float:
    """Metres to flight level (hundreds of feet); not rounded."""
    return metres / FOOT_M / 100.0


def nm_to_m(nautical_miles: float) -> float:
    """Nautical miles to metres."""
    return nautical_miles * NAUTICAL_MILE_M
