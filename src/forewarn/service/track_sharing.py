"""One tracker state shared by several service processes on one database (PostgreSQL; docs/tracks.md, "Several
processes").

The state is in the store: every track's latest state, the open alerts with their hysteresis (when each open
predicted encounter was last predicted), the feed periods and the time of the last prediction pass, each change
numbered in commit order (:class:`forewarn.store.repository.SharedTrackState`). Every tracker works inside a
write transaction, which holds the database-wide writer lock: it first applies the changes committed after its
position (by any process), then ingests or predicts, then writes what it changed and moves its position to the
head. So a tracker always works on the one state, as if there were one tracker, and two processes never raise the
same encounter twice. After a failed transaction the tracker reloads the whole state at its next one (its
in-memory picture may hold changes that were rolled back).
"""

from __future__ import annotations

from forewarn.service.track_encounters import Encounters, FeedPeriods
from forewarn.service.track_model import TrackState
from forewarn.store.repository import SharedTrackState, TrackStateChanges

PREDICTED_AT = "predicted_at"
"""The tracker value holding the feed time (POSIX seconds UTC) of the last prediction pass."""
PERIOD = "period:"
"""Prefix of the tracker values holding the period (seconds) of feed ``party/source``."""


class SharedTracks:
    """A tracker's link to the shared state (see module docstring)."""

    def __init__(self, store: SharedTrackState) -> None:
        self.store = store
        self.seen = 0
        """The position of the shared state the tracker's picture reflects."""
        self.stale = True
        """Reload the whole state at the next catch-up (at start, and after a failed transaction)."""
        self.caught_up = 0
        """Changes of other processes applied so far (track states, alerts and values)."""

    def catch_up(self, tracks: dict[tuple[str, str], TrackState], encounters: Encounters,
                 periods: FeedPeriods) -> float | None:
        """Inside a write transaction: bring the picture (``tracks``, ``encounters``, ``periods``) to the shared
        state; the feed time of the last prediction pass if it changed (else None)."""
        if self.stale:
            tracks.clear()
            encounters.clear()
            periods.clear()
            changes = self.store.shared_state()
            self.stale = False
        else:
            changes = self.store.track_changes_since(self.seen)
            self.caught_up += len(changes.tracks) + len(changes.alerts) + len(changes.statuses) + len(changes.values)
        return self._apply(changes, tracks, encounters, periods)

    def _apply(self, changes: TrackStateChanges, tracks: dict[tuple[str, str], TrackState], encounters: Encounters,
               periods: FeedPeriods) -> float | None:
        for record in changes.tracks:
            tracks[(record.party_id, record.track_id)] = TrackState(record.party_id, record.last, record.operation_id,
                                                                    record.source, record.conforming)
        for stored in changes.alerts:
            if stored.open:
                encounters.restore_open(stored.alert, stored.last_seen_s, stored.updates)
            else:
                encounters.closed(stored.alert)
        encounters.put_statuses(changes.statuses)
        predicted_at = None
        for name, value in changes.values.items():
            if name == PREDICTED_AT:
                predicted_at = value
            elif name.startswith(PERIOD):
                periods.put(name[len(PERIOD):], value)
        self.seen = changes.head
        return predicted_at

    def write(self, encounters: Encounters, periods: FeedPeriods, predicted_at: float | None) -> int:
        """Inside the write transaction, at its end: store what the tracker changed beyond tracks and alerts (the
        encounters predicted again, new feed periods, the time of the pass if one ran); the position after it
        (for :meth:`committed`)."""
        repredicted = encounters.take_repredicted()
        if repredicted:
            self.store.put_encounter_status(repredicted)
        values = {PERIOD + feed: period for feed, period in periods.take_changed().items()}
        if predicted_at is not None:
            values[PREDICTED_AT] = predicted_at
        if values:
            self.store.put_tracker_values(values)
        return self.store.track_state_head()

    def committed(self, head: int) -> None:
        """The transaction that ended at ``head`` committed: the picture reflects the state up to it."""
        self.seen = head
