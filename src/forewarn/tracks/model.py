"""Position reports and columnar batches of them: the one shape every feed parser produces.

Units and datums (the same everywhere in :mod:`forewarn.tracks`):

* time ``t_s``: seconds since 1970-01-01T00:00:00 UTC (POSIX time, float);
* ``lat_deg``/``lon_deg``: WGS84 degrees, longitude in [-180, 180);
* ``alt_m``: metres; feeds that report barometric (pressure) altitude in feet are converted unchanged in datum
  and compared with the volumes' altitude bands as they are (documented approximation);
* ``gs_mps``: ground speed, metres per second; ``track_deg``: true course over ground, degrees clockwise from
  north; ``vs_mps``: vertical speed, metres per second (positive climbing).

Missing numbers are ``NaN``; a missing callsign is ``""``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
StrArray = npt.NDArray[np.object_]

NUMERIC_FIELDS = ("t_s", "lat_deg", "lon_deg", "alt_m", "gs_mps", "track_deg", "vs_mps")
"""The float columns of a :class:`PositionBatch`, in order."""


@dataclass(frozen=True, slots=True)
class Position:
    """One position report of one track (units in the module docstring)."""

    track_id: str
    t_s: float
    lat_deg: float
    lon_deg: float
    alt_m: float = float("nan")
    gs_mps: float = float("nan")
    track_deg: float = float("nan")
    vs_mps: float = float("nan")
    callsign: str = ""


def _floats(values: Iterable[float]) -> FloatArray:
    return np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=np.float64)


@dataclass
class PositionBatch:
    """Many position reports as columns (NumPy arrays of equal length); units in the module docstring."""

    track_id: StrArray
    t_s: FloatArray
    lat_deg: FloatArray
    lon_deg: FloatArray
    alt_m: FloatArray
    gs_mps: FloatArray
    track_deg: FloatArray
    vs_mps: FloatArray
    callsign: StrArray = field(default_factory=lambda: np.empty(0, dtype=object))

    def __post_init__(self) -> None:
        n = len(self.track_id)
        if len(self.callsign) == 0 and n:
            self.callsign = np.full(n, "", dtype=object)
        for name in (*NUMERIC_FIELDS, "callsign"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"column {name} has {len(getattr(self, name))} rows, expected {n}")

    def __len__(self) -> int:
        return len(self.track_id)

    @classmethod
    def empty(cls) -> PositionBatch:
        """A batch with no rows."""
        return cls.from_positions([])

    @classmethod
    def from_positions(cls, positions: Sequence[Position]) -> PositionBatch:
        """Columns from row objects."""
        return cls(
            track_id=np.array([p.track_id for p in positions], dtype=object),
            **{name: _floats(getattr(p, name) for p in positions) for name in NUMERIC_FIELDS},
            callsign=np.array([p.callsign for p in positions], dtype=object),
        )

    def positions(self) -> list[Position]:
        """Row objects from columns."""
        cols = [self.track_id, *(getattr(self, n) for n in NUMERIC_FIELDS), self.callsign]
        return [
            Position(str(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4]), float(r[5]), float(r[6]),
                     float(r[7]), str(r[8]))
            for r in zip(*cols, strict=True)
        ]

    def take(self, index: npt.NDArray[np.bool_] | npt.NDArray[np.intp]) -> PositionBatch:
        """The rows selected by a boolean mask or an index array, in that order."""
        return PositionBatch(
            track_id=self.track_id[index], callsign=self.callsign[index],
            **{name: getattr(self, name)[index] for name in NUMERIC_FIELDS},
        )

    @classmethod
    def concat(cls, batches: Sequence[PositionBatch]) -> PositionBatch:
        """All rows of ``batches``, in order."""
        if not batches:
            return cls.empty()
        return cls(
            track_id=np.concatenate([b.track_id for b in batches]),
            callsign=np.concatenate([b.callsign for b in batches]),
            **{name: np.concatenate([getattr(b, name) for b in batches]) for name in NUMERIC_FIELDS},
        )
