"""The vocabulary of the feed-quality screen (:mod:`forewarn.tracks.quality`): why a row is rejected or flagged,
the thresholds, the last accepted point of a track, the verdict on a batch, and the great-circle distance used.
Units in the names: metres, metres per second, POSIX seconds UTC, WGS84 degrees.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt

from forewarn.tracks.model import FloatArray, PositionBatch, StrArray

IntArray = npt.NDArray[np.intp]
_T = TypeVar("_T", bound=np.generic)
BoolArray = npt.NDArray[np.bool_]

EARTH_RADIUS_M = 6_371_008.8
"""Mean Earth radius (IUGG) in metres, used for great-circle distances."""


class Reason(StrEnum):
    """Why a row was rejected (first failing check)."""

    MISSING = "missing"
    TIME_RANGE = "time_out_of_range"
    LAT_RANGE = "lat_out_of_range"
    LON_RANGE = "lon_out_of_range"
    ALT_RANGE = "alt_out_of_range"
    SPEED_RANGE = "speed_out_of_range"
    VS_RANGE = "vertical_speed_out_of_range"
    TRACK_RANGE = "track_out_of_range"
    BACKWARDS = "time_backwards"
    DUPLICATE = "duplicate"
    SAME_TIME = "time_not_advancing"
    TELEPORT = "impossible_speed"
    CLIMB = "impossible_vertical_speed"
    STORED = "already_stored"
    """The same (party, track, time) is already stored: a position fed again (not checked again)."""


class Flag(StrEnum):
    """Why an accepted row is suspicious."""

    FROZEN = "frozen_position"
    SPEED_MISMATCH = "speed_mismatch"
    SLOW_AT_ALTITUDE = "slow_at_altitude"


ROW_REASONS = (Reason.MISSING, Reason.TIME_RANGE, Reason.LAT_RANGE, Reason.LON_RANGE, Reason.ALT_RANGE,
                Reason.SPEED_RANGE, Reason.VS_RANGE, Reason.TRACK_RANGE)
PAIR_REASONS = ("", Reason.BACKWARDS, Reason.DUPLICATE, Reason.SAME_TIME, Reason.TELEPORT, Reason.CLIMB)
"""Codes of the anchor comparison: 0 = passes."""



@dataclass(frozen=True, slots=True)
class QualityConfig:
    """Thresholds (units in the names: metres, metres per second, POSIX seconds UTC)."""

    max_speed_mps: float = 1200.0
    min_alt_m: float = -500.0
    max_alt_m: float = 30_000.0
    max_vs_mps: float = 300.0
    min_t_s: float = 0.0
    max_t_s: float = 4_102_444_800.0  # 2100-01-01T00:00:00Z
    position_noise_m: float = 50.0
    altitude_noise_m: float = 60.0
    frozen_after_s: float = 20.0
    frozen_min_gs_mps: float = 5.0
    mismatch_factor: float = 3.0
    mismatch_slack_mps: float = 50.0
    slow_alt_m: float = 7_500.0
    slow_max_gs_mps: float = 50.0


class LastAccepted(NamedTuple):
    """The last accepted point of a track, and the time its position was first reported (``fix_t_s``)."""

    t_s: float
    lat_deg: float
    lon_deg: float
    alt_m: float
    gs_mps: float
    track_deg: float
    vs_mps: float
    callsign: str
    fix_t_s: float


@dataclass(frozen=True)
class QualityResult:
    """The verdict on one batch. Indices are row numbers of the input batch.

    ``accepted`` holds the accepted rows sorted by (track id, time); ``accepted_index`` their input rows.
    ``rejected_index``/``rejected_reason`` are in input order. ``flagged_index``/``flagged_reason`` list accepted
    rows with a flag, one entry per (row, flag). ``counts`` counts this batch (``accepted``, ``rejected``,
    ``flagged``, ``rejected:<reason>``, ``flagged:<flag>``).
    """

    accepted: PositionBatch
    accepted_index: IntArray
    rejected_index: IntArray
    rejected_reason: StrArray
    flagged_index: IntArray
    flagged_reason: StrArray
    counts: dict[str, int]

    def with_stored(self, stored: BoolArray) -> QualityResult:
        """This verdict on the rows of a batch not ``stored``, as a verdict on the whole batch: row numbers mapped
        back, the stored rows rejected as :attr:`Reason.STORED` and counted."""
        if not stored.any():
            return self
        rows = np.flatnonzero(~stored)
        dropped = np.flatnonzero(stored)
        rejected = np.concatenate([rows[self.rejected_index], dropped])
        reasons = np.concatenate([self.rejected_reason, np.full(len(dropped), str(Reason.STORED), dtype=object)])
        by_row = np.argsort(rejected, kind="stable")
        counts = dict(self.counts)
        for key in ("received", "rejected", f"rejected:{Reason.STORED}"):
            counts[key] = counts.get(key, 0) + len(dropped)
        return QualityResult(self.accepted, rows[self.accepted_index], rejected[by_row],
                             reasons[by_row].astype(object), rows[self.flagged_index], self.flagged_reason, counts)

    def reasons(self) -> dict[int, str]:
        """Rejected input row -> reason."""
        return {int(i): str(r) for i, r in zip(self.rejected_index, self.rejected_reason, strict=True)}

    def flags(self) -> dict[int, set[str]]:
        """Flagged input row -> its flags."""
        out: dict[int, set[str]] = {}
        for i, f in zip(self.flagged_index, self.flagged_reason, strict=True):
            out.setdefault(int(i), set()).add(str(f))
        return out


def haversine_m(lat1: FloatArray, lon1: FloatArray, lat2: FloatArray, lon2: FloatArray) -> FloatArray:
    """Great-circle distance in metres between WGS84 points (degrees), on the mean-radius sphere."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    h = np.sin((p2 - p1) / 2.0) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2.0) ** 2
    return np.asarray(2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0))), dtype=np.float64)

