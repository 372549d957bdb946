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


# ------------------------------------------------------------------------------------------- separation boundary

DISTANCE_TOLERANCE_M = 0.01
"""The boundary tolerance of every distance comparison against a separation minimum, metres (1 cm).

Forewarn's one rule for separation, used by strategic detection (:mod:`forewarn.core.conflicts`), tactical
prediction (:mod:`forewarn.tracks.cpa`, geodesic model), conformance and the ``endanger`` radius
(:mod:`forewarn.tracks.conformance`): two things are **closer than a minimum** iff

    gap < minimum - DISTANCE_TOLERANCE_M        (metres, horizontal or vertical)

so a separation equal to the minimum (e.g. adjacent flight levels, exactly 1,000 ft = 304.8 m apart, whatever the
floating-point rounding of FL x 100 x 0.3048) is never a loss, and a gap 1 cm or more under it always is (999 ft
is a conflict). Minima are given in the unit of the agreement and converted exactly (1 ft = 0.3048 m, 1 NM = 1,852 m);
the tolerance is far above the rounding of those conversions (~1e-13 m) and far below any surveillance accuracy.
"""

TIME_TOLERANCE_S = 0.001
"""The boundary tolerance of time comparisons against a time minimum, seconds (1 ms): ``gap < minimum - 0.001``."""


def closer_than(gap: float, minimum: float, tolerance: float = DISTANCE_TOLERANCE_M) -> bool:
    """Whether ``gap`` is a loss of the separation ``minimum`` under the boundary rule: ``gap < minimum - tolerance``
    (same unit for all three, metres by default)."""
    return gap < minimum - tolerance


def effective_minimum(minimum: float, tolerance: float = DISTANCE_TOLERANCE_M) -> float:
    """The threshold a strict ``<`` comparison uses so that it follows :func:`closer_than`: ``minimum - tolerance``
    (may be negative for a zero minimum: then only an overlap deeper than the tolerance counts)."""
    return minimum - tolerance
