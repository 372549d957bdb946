"""The tracker's settings and its in-memory records: a track's state, an open encounter's status, an ingest's
result. Distances in metres, times in seconds of feed time (POSIX seconds UTC)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from forewarn.tracks import cpa
from forewarn.tracks.alerts import TrackAlert
from forewarn.tracks.conformance import Tolerance
from forewarn.tracks.model import Position, PositionBatch
from forewarn.units import feet_to_m, nm_to_m

TRACK_CLASS = "track"
"""Activity class of a track that belongs to no operation (for agreements' class-pair minima)."""


@dataclass(frozen=True)
class TrackSettings:
    """Tunables of tracking (metres, seconds; feed time)."""

    tolerance: Tolerance = field(default_factory=lambda: Tolerance(horizontal_m=185.0, vertical_m=30.0))
    """How far outside its operation's volumes a track may be and still conform (0.1 NM, 100 ft)."""
    endanger: Tolerance = field(default_factory=lambda: Tolerance(horizontal_m=nm_to_m(5), vertical_m=feet_to_m(1000),
                                                                  separation=True))
    """A nonconforming track endangers the parties whose notified volumes are closer than this (5 NM, 1,000 ft =
    304.8 m; a separation minimum under the boundary rule of :mod:`forewarn.units`: one flight level above a
    volume's top is not closer)."""
    lookahead_s: float = 300.0
    stale_s: float = 60.0
    """Tracks not heard from for this long (behind the freshest track) are left out of prediction."""
    clear_after_s: float = 90.0
    """Minimum hysteresis: a predicted encounter is cleared once it has not been predicted for max(2 feed periods,
    this), the feed period of each track's feed estimated from its positions' spacing
    (:class:`forewarn.service.track_encounters.FeedPeriods`), so that one missed pass (or one late position) never
    clears and re-raises an alert. Keep it at least twice the interval between prediction passes."""
    predict_interval_s: float = 1.0
    """Ingest runs a prediction pass when its freshest position is this much newer than the last pass (feed time);
    ``inf``: never (call :meth:`forewarn.service.tracking.Tracker.predict` yourself)."""
    entry_step_s: float = 5.0
    """Sampling step along a predicted path when looking for volume entries."""
    max_speed_mps: float = 1200.0
    """Feed-quality ceiling on implied and reported speeds (raise it for missile feeds)."""


@dataclass
class TrackState:
    """In-memory state of one track."""

    party_id: str
    last: Position
    operation_id: str | None
    source: str
    conforming: bool | None = None


@dataclass(frozen=True)
class EncounterStatus:
    """An open predicted encounter: raised once at ``raised_s``, predicted again ``updates`` times since (the last
    at ``last_seen_s``), cleared once (feed times, POSIX seconds UTC)."""

    raised_s: float
    last_seen_s: float
    updates: int = 0


@dataclass
class IngestResult:
    """What one ingest did: counts per reason, the rejected rows (index in the batch, reason) and the alerts."""

    received: int
    accepted: int
    rejected: list[tuple[int, str]]
    flagged: list[tuple[int, str]]
    counts: dict[str, int]
    alerts: list[TrackAlert] = field(default_factory=list)


def at_time(t_s: float) -> datetime:
    """Feed time ``t_s`` (POSIX seconds) as a UTC datetime."""
    return datetime.fromtimestamp(t_s, tz=UTC)


def vector_row(v: cpa.TrackVectors, k: int, t_s: float) -> PositionBatch:
    """Row ``k`` of state vectors as a one-row batch at feed time ``t_s`` (for the position an alert carries)."""
    return PositionBatch.from_positions([Position("", t_s, float(v.lat_deg[k]), float(v.lon_deg[k]),
                                                  float(v.alt_m[k]), float(v.gs_mps[k]), float(v.track_deg[k]),
                                                  float(v.vs_mps[k]))])
