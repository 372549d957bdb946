"""Where positions are with respect to the notified volumes: one vectorised 4D point-in-volume test.

A :class:`VolumeLayer` holds the live volumes of an :class:`~forewarn.core.airspace.Airspace` as one shapely STRtree
over their footprints, grown by a horizontal tolerance (geodesic, metres), plus NumPy columns of their altitude
bands (metres) and windows (POSIX seconds, UTC). :meth:`VolumeLayer.containing` answers, for many positions at once,
which volumes contain which positions:

    contained  <=>  footprint grown by ``horizontal_m`` covers (lon, lat)
               and  lower_m - vertical_m - 0.01 <= alt_m < upper_m + vertical_m + 0.01
               and  start_s - time_s <= t_s < end_s + time_s

That is a tolerance as an *allowance* (conformance: a position exactly at the tolerance conforms, within 1 cm). A
tolerance may instead be a *separation minimum* (``Tolerance(separation=True)``, the ``endanger`` radius): a position
is near a volume iff its gap is under the minimum by more than 1 cm, the boundary rule of :mod:`forewarn.units`:

    near       <=>  footprint grown by ``horizontal_m - 0.01`` covers (lon, lat)
               and  lower_m - (vertical_m - 0.01) < alt_m < upper_m + (vertical_m - 0.01)
               and  start_s - time_s <= t_s < end_s + time_s

so an aircraft one flight level (1,000 ft) above a volume's top is not near it under a 1,000 ft minimum.

Positions without an altitude (NaN) are judged on the horizontal and time tests alone (a feed that lacks altitude
cannot prove a track left the band). Altitudes of feeds are compared with the volumes' bands as given (see
:mod:`forewarn.tracks.model`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely
from shapely.strtree import STRtree

from forewarn.core.airspace import Airspace
from forewarn.core.model import LIVE_STATES, OperationState
from forewarn.core.policy import envelope_volumes
from forewarn.tracks.model import FloatArray
from forewarn.units import DISTANCE_TOLERANCE_M, effective_minimum

IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Tolerance:
    """How far outside a volume a position may be and still count as inside (metres, metres, seconds).

    ``separation``: the distances are a separation minimum, not an allowance (see the module docstring).
    """

    horizontal_m: float = 0.0
    vertical_m: float = 0.0
    time_s: float = 0.0
    separation: bool = False

    def grow_m(self) -> float:
        """The horizontal growth of the footprints, metres (the minimum less 1 cm for a separation)."""
        return max(effective_minimum(self.horizontal_m), 0.0) if self.separation else self.horizontal_m

    def band(self, lower_m: FloatArray, upper_m: FloatArray) -> tuple[FloatArray, FloatArray]:
        """The altitude limits (metres) positions are compared with: see the module docstring."""
        v = effective_minimum(self.vertical_m) if self.separation else self.vertical_m + DISTANCE_TOLERANCE_M
        return lower_m - v, upper_m + v

    def in_band(self, alt: FloatArray, low: FloatArray, high: FloatArray) -> BoolArray:
        """Whether altitudes (metres, NaN: unknown, counts as in) lie within the limits of :meth:`band`."""
        above = (low < alt) if self.separation else (low <= alt)
        out: BoolArray = np.isnan(alt) | (above & (alt < high))
        return out


@dataclass(frozen=True)
class VolumeRef:
    """One volume of the layer: its operation, owner, index in the operation and the operation's state."""

    operation_id: str
    party_id: str
    volume_index: int
    activity_class: str
    state: OperationState


class VolumeLayer:
    """The live volumes of an airspace, ready for vectorised 4D containment tests (see module docstring)."""

    def __init__(self, airspace: Airspace, tolerance: Tolerance = Tolerance(), shown_to: str | None = None) -> None:
        """``shown_to``: take each volume as that party is shown it (coarsened where an agreement says so, see
        :func:`forewarn.core.policy.envelope_volumes`), so that what it is told cannot reveal more than it may see."""
        self.tolerance = tolerance
        refs: list[VolumeRef] = []
        shapes = []
        lower, upper, start, end = [], [], [], []
        for op in airspace.operations.values():
            if op.state not in LIVE_STATES:
                continue
            volumes = op.volumes if shown_to is None else envelope_volumes(shown_to, op, airspace.book)
            for i, volume in enumerate(volumes):
                refs.append(VolumeRef(op.id, op.party_id, i, op.activity_class, op.state))
                shapes.append(volume.buffered(tolerance.grow_m()))
                lower.append(volume.lower_m)
                upper.append(volume.upper_m)
                start.append(volume.start_s)
                end.append(volume.end_s)
        self.refs = refs
        self.shapes = shapes
        self.tree = STRtree(shapes)
        self.lower_m = np.asarray(lower, dtype=np.float64)
        self.upper_m = np.asarray(upper, dtype=np.float64)
        self.start_s = np.asarray(start, dtype=np.float64)
        self.end_s = np.asarray(end, dtype=np.float64)

    def __len__(self) -> int:
        return len(self.refs)

    def containing(self, lon: FloatArray, lat: FloatArray, alt_m: FloatArray,
                   t_s: FloatArray) -> tuple[IntArray, IntArray]:
        """Pairs (position index, volume index) such that the volume contains the position (module docstring),
        sorted by position index then volume index."""
        if not len(self.refs) or not len(lon):
            empty = np.empty(0, dtype=np.intp)
            return empty, empty
        points = shapely.points(lon, lat)
        pos, vol = self.tree.query(points, predicate="intersects")
        return self._in_band_and_window(pos, vol, alt_m, t_s)

    def _in_band_and_window(self, pos: IntArray, vol: IntArray, alt_m: FloatArray,
                            t_s: FloatArray) -> tuple[IntArray, IntArray]:
        tol = self.tolerance
        alt = alt_m[pos]
        t = t_s[pos]
        low, high = tol.band(self.lower_m[vol], self.upper_m[vol])
        in_band = tol.in_band(alt, low, high)
        in_window = (self.start_s[vol] - tol.time_s <= t) & (t < self.end_s[vol] + tol.time_s)
        keep = in_band & in_window
        pos, vol = pos[keep], vol[keep]
        order = np.lexsort((vol, pos))
        return pos[order].astype(np.intp), vol[order].astype(np.intp)

    def crossed_by(self, lon: FloatArray, lat: FloatArray) -> tuple[IntArray, IntArray]:
        """Pairs (path index, volume index) whose footprint (grown by the tolerance) meets the path: row k of the
        (paths, samples) arrays ``lon``/``lat`` (WGS84 degrees) is one path, taken as the polyline through its
        samples. Every footprint that contains a sample meets that polyline, so the screen is conservative for
        callers that then test those samples in 4D with :meth:`containing` (the samples are points of the
        geodesic path, whatever the straight lon/lat line between its ends does)."""
        lon = np.atleast_2d(lon)
        lat = np.atleast_2d(lat)
        if not len(self.refs) or not lon.size:
            empty = np.empty(0, dtype=np.intp)
            return empty, empty
        coords = np.stack([lon, lat], axis=2)
        geoms = shapely.points(coords[:, 0, :]) if coords.shape[1] == 1 else shapely.linestrings(coords)
        seg, vol = self.tree.query(geoms, predicate="intersects")
        order = np.lexsort((vol, seg))
        return seg[order].astype(np.intp), vol[order].astype(np.intp)
