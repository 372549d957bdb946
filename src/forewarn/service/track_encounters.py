"""What the tracker remembers between batches besides the tracks: the open encounters (each raised once and
cleared once, with the hysteresis of predicted ones) and the estimated period of each feed.

Both note what changed since they were last asked (:meth:`Encounters.take_repredicted`,
:meth:`FeedPeriods.take_changed`), so that a tracker sharing its state with other processes writes those changes
to the store (:mod:`forewarn.service.track_sharing`). Times are feed times (POSIX seconds UTC).
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import numpy as np

from forewarn.service.track_model import EncounterStatus, TrackState, at_time
from forewarn.tracks.alerts import AlertKind, TrackAlert
from forewarn.tracks.model import PositionBatch

Snapshot = tuple[dict[str, TrackAlert], dict[str, EncounterStatus]]


class Encounters:
    """Open encounters: encounter key -> the alert that opened it, and predicted encounters' status."""

    def __init__(self, note_changes: bool = False) -> None:
        """``note_changes``: remember the encounters predicted again for :meth:`take_repredicted`."""
        self.note_changes = note_changes
        self.open: dict[str, TrackAlert] = {}
        self.seen: dict[str, EncounterStatus] = {}
        """Predicted encounters: encounter key -> when it was raised and last predicted."""
        self._repredicted: set[str] = set()

    def restore_open(self, alert: TrackAlert, last_seen_s: float | None = None, updates: int = 0) -> None:
        """Hold ``alert`` open (as stored: predicted last at ``last_seen_s``, default when raised)."""
        raised = alert.at.timestamp()
        self.open[alert.encounter] = alert
        self.seen[alert.encounter] = EncounterStatus(raised, raised if last_seen_s is None else last_seen_s, updates)

    def closed(self, alert: TrackAlert) -> None:
        """``alert`` is closed (in the store): its encounter is no longer open, unless another alert opened it."""
        held = self.open.get(alert.encounter)
        if held is not None and held.id == alert.id:
            del self.open[alert.encounter]
            self.seen.pop(alert.encounter, None)

    def put_statuses(self, statuses: list[tuple[str, float, int]]) -> None:
        """(alert id, last predicted at, passes since raised) of open encounters predicted again elsewhere; those
        of alerts no longer open are ignored."""
        if not statuses:
            return
        key_of = {alert.id: key for key, alert in self.open.items()}
        for alert_id, last_seen_s, updates in statuses:
            key = key_of.get(alert_id)
            if key is not None:
                raised = self.open[key].at.timestamp()
                self.seen[key] = EncounterStatus(raised, last_seen_s, updates)

    def clear(self) -> None:
        """Forget everything (before a reload from the store)."""
        self.open, self.seen = {}, {}
        self._repredicted.clear()

    def snapshot(self) -> Snapshot:
        """The open encounters and their statuses, for :meth:`restore` if a transaction fails."""
        return dict(self.open), dict(self.seen)

    def restore(self, saved: Snapshot) -> None:
        self.open, self.seen = dict(saved[0]), dict(saved[1])

    def saw(self, key: str, ref_s: float) -> bool:
        """Note that encounter ``key`` is predicted by the pass at ``ref_s``; whether it is already open (then this
        pass updates it rather than raising it again)."""
        status = self.seen.get(key)
        if key in self.open and status is not None:
            self.seen[key] = replace(status, last_seen_s=ref_s, updates=status.updates + 1)
            if self.note_changes:
                self._repredicted.add(key)
            return True
        self.seen[key] = EncounterStatus(ref_s, ref_s)
        return key in self.open

    def status(self, key: str) -> EncounterStatus:
        """The status of open encounter ``key`` (raised and last predicted when its alert was raised if unknown)."""
        opened = self.open[key]
        return self.seen.get(key, EncounterStatus(opened.at.timestamp(), opened.at.timestamp()))

    def take_repredicted(self) -> list[tuple[str, float, int]]:
        """(alert id, last predicted at, passes since raised) of the open encounters predicted again since the
        last call."""
        out = [(self.open[k].id, self.seen[k].last_seen_s, self.seen[k].updates)
               for k in sorted(self._repredicted) if k in self.open and k in self.seen]
        self._repredicted.clear()
        return out

    def alert(self, kind: AlertKind, encounter: str, batch: PositionBatch, row: int, party_id: str, track_id: str,
              op_id: str | None, *, clears: bool = False, message: str, **extra: Any) -> TrackAlert:
        """A new alert at ``batch[row]`` opening ``encounter``; a clearing one ends (and names) the open alert of
        ``encounter``."""
        opened = self.open.get(encounter) if clears else None
        alt = float(batch.alt_m[row])
        alert = TrackAlert.model_validate({
            "id": str(uuid.uuid4()), "kind": kind, "encounter": encounter, "at": at_time(float(batch.t_s[row])),
            "party_id": party_id, "track_id": track_id, "operation_id": op_id,
            "lat_deg": float(batch.lat_deg[row]), "lon_deg": float(batch.lon_deg[row]),
            "alt_m": None if np.isnan(alt) else alt, "clears": opened.id if opened else None,
            "message": message, **extra,
        })
        if clears:
            self.open.pop(encounter, None)
            self.seen.pop(encounter, None)
        else:
            self.open[encounter] = alert
        return alert


class FeedPeriods:
    """The estimated period of each feed ``party/source`` (seconds): the smoothed median spacing of its tracks'
    positions."""

    def __init__(self, note_changes: bool = False) -> None:
        """``note_changes``: remember the feeds estimated anew for :meth:`take_changed`."""
        self.note_changes = note_changes
        self.periods: dict[str, float] = {}
        self._changed: set[str] = set()

    def period_s(self, feed: str) -> float:
        """The period of ``feed`` (``party/source``; 0 before two positions of a track)."""
        return self.periods.get(feed, 0.0)

    def put(self, feed: str, period_s: float) -> None:
        """Set the period of ``feed`` as stored (not noted as a change)."""
        self.periods[feed] = period_s

    def clear(self) -> None:
        """Forget every period (before a reload from the store)."""
        self.periods = {}
        self._changed.clear()

    def take_changed(self) -> dict[str, float]:
        """The periods estimated anew since the last call."""
        out = {feed: self.periods[feed] for feed in sorted(self._changed)}
        self._changed.clear()
        return out

    def estimate(self, feed: str, batch: PositionBatch, before: list[TrackState | None]) -> None:
        """Update ``feed``'s period from the spacing of the positions of each track in the sorted ``batch`` and
        since each track's last known position (``before``: the state of each track of the batch, in order of
        first appearance; None if new): the median positive spacing, smoothed over batches (weight 0.3 for the new
        batch) so that one gap does not double it."""
        if not len(batch):
            return
        keys = batch.track_id.astype(str)
        t = batch.t_s
        same = keys[1:] == keys[:-1]
        starts = np.flatnonzero(np.r_[True, ~same])
        gaps = [(t[1:] - t[:-1])[same],
                np.array([t[k] - b.last.t_s for k, b in zip(starts.tolist(), before, strict=True) if b is not None],
                         dtype=float)]
        spacing = np.concatenate(gaps)
        spacing = spacing[np.isfinite(spacing) & (spacing > 0)]
        if not len(spacing):
            return
        new = float(np.median(spacing))
        old = self.periods.get(feed)
        self.periods[feed] = new if old is None else 0.7 * old + 0.3 * new
        if self.note_changes:
            self._changed.add(feed)
