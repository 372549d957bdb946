"""The tracking use cases: ingest positions, check conformance and intrusions, predict conflicts and entries.

One :class:`Tracker` per service process. ``ingest`` screens a batch of positions of one party's feed
(:mod:`forewarn.tracks.quality`), tests every accepted position against the live notified volumes in one
vectorised 4D query (:mod:`forewarn.service.track_conformance`), and in **one transaction** stores the positions,
the tracks' states, the feed counters, the alerts and the deliveries that carry them (the same outbox as notices,
so alerts reach parties over the same channels, SSE and webhooks). ``predict`` (run by ``ingest`` at most every
``predict_interval_s`` of feed time, or directly) extrapolates every fresh track in a straight line and raises
predicted conflicts between tracks of different parties and predicted entries into other parties' notified volumes
(:mod:`forewarn.service.track_prediction`). Open encounters and feed periods: :mod:`.track_encounters`.

On a store shared by several processes (PostgreSQL), every ingest and pass runs in one write transaction that
first brings this tracker to the one shared tracker state (:mod:`forewarn.service.track_sharing`): positions fed to
any process reach the same state, and an encounter is raised once whichever processes the parties feed.

Who is told: the track's owner always; another party only when an agreement binds it to the owner (the same rule as
notices): tracks and volumes of a party bound by no agreement are neither compared with nor revealed to each other.
Times are feed times (POSIX seconds UTC); ``now`` is when the service recorded the alert (creation of its
deliveries).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from forewarn.core.policy import coarsening_for
from forewarn.core.records import Delivery
from forewarn.errors import Forbidden, InvalidInput, NotFound
from forewarn.service.track_conformance import ConformanceCheck
from forewarn.service.track_encounters import Encounters, FeedPeriods
from forewarn.service.track_layers import LiveLayers
from forewarn.service.track_model import IngestResult, TrackSettings, TrackState
from forewarn.service.track_prediction import Prediction
from forewarn.service.track_sharing import SharedTracks
from forewarn.store.repository import SharedTrackState, TrackStorage
from forewarn.store.sqlite.tracks import TrackRecord
from forewarn.tracks.alerts import TrackAlert, alert_payload, recipients
from forewarn.tracks.model import PositionBatch
from forewarn.tracks.quality import FeedQuality, QualityConfig, QualityResult

if TYPE_CHECKING:
    from forewarn.service.notices import Forewarn

__all__ = ["IngestResult", "TrackSettings", "TrackState", "Tracker"]

REFRESH_S = 0.5
"""With a shared state, reads bring the tracker to it at most this often (wall-clock seconds)."""


class Tracker:
    """Live tracks of every party (see module docstring)."""

    def __init__(self, service: Forewarn, store: TrackStorage, settings: TrackSettings | None = None) -> None:
        self.service = service
        self.store = store
        self.settings = settings or TrackSettings()
        self.quality = FeedQuality(QualityConfig(max_speed_mps=self.settings.max_speed_mps))
        self._lock = threading.RLock()
        self.shared = SharedTracks(store) if isinstance(store, SharedTrackState) else None
        """With a store shared by several processes: the link that keeps this tracker on the one shared state."""
        self._sharing = False
        self._refreshed = float("-inf")
        self.tracks: dict[tuple[str, str], TrackState] = {}
        self.encounters = Encounters(note_changes=self.shared is not None)
        self.periods = FeedPeriods(note_changes=self.shared is not None)
        self.layers = LiveLayers(service)
        self.conformance = ConformanceCheck(self.layers, self.encounters, self.settings)
        self.prediction = Prediction(self.layers, self.encounters, self.periods, self.settings)
        self._last_predict_s = float("-inf")
        self._predicted: float | None = None
        """The feed time of a pass run in the open shared transaction (to store), if any."""
        if self.shared is not None:
            return  # loaded at the first transaction, under the writer lock
        for record in store.list_tracks():
            self.tracks[(record.party_id, record.track_id)] = TrackState(
                record.party_id, record.last, record.operation_id, record.source, record.conforming)
        for alert in store.open_alerts():
            self.encounters.restore_open(alert)

    @property
    def open(self) -> dict[str, TrackAlert]:
        """Open encounters: encounter key -> the alert that opened it."""
        return self.encounters.open

    def feed_period_s(self, party_id: str, source: str) -> float:
        """The estimated period of ``party_id``'s feed ``source`` (seconds; 0 before two positions of a track)."""
        return self.periods.period_s(f"{party_id}/{source}")

    # ------------------------------------------------------------------ the shared state
    @contextmanager
    def _working(self) -> Iterator[None]:
        """The writer lock (in-process, then with a shared store the database's, in a transaction that first
        brings this tracker and the airspace to the shared state and at its end stores what the tracker changed:
        :mod:`forewarn.service.track_sharing`). Nested calls join the outer one."""
        with self.service.committing(), self._lock:
            if self.shared is None or self._sharing:
                yield
                return
            shared, self._sharing = self.shared, True
            try:
                with self.service.repo.transaction():
                    replica = self.service.commits.replica
                    if replica is not None:
                        replica.catch_up()  # agreements and operations filed at other processes
                    predicted = shared.catch_up(self.tracks, self.encounters, self.periods)
                    if predicted is not None:
                        self._last_predict_s = predicted
                    self._predicted = None
                    yield
                    head = shared.write(self.encounters, self.periods, self._predicted)
                shared.committed(head)
                self._refreshed = time.monotonic()
            except BaseException:
                shared.stale = True  # the picture may hold what was rolled back: reload it next time
                self.quality = FeedQuality(self.quality.config)  # and the feed screen too (see ingest)
                raise
            finally:
                self._sharing = False

    # ------------------------------------------------------------------ ingest
    def _check_request(self, party_id: str, source: str, now: datetime, operation_id: str | None) -> None:
        """A bad time, source, party or operation raises before anything is read or stored."""
        if now.tzinfo is None:
            raise InvalidInput("now must be a timezone-aware UTC time")
        if not source or len(source) > 128:
            raise InvalidInput("source must be 1 to 128 characters", {"source": source})
        if self.service.repo.get_party(party_id) is None:
            raise InvalidInput(f"unknown party {party_id}", {"party_id": party_id})
        if operation_id is not None:
            op = self.service.repo.get_operation(operation_id)
            if op is None:
                raise NotFound(f"no operation {operation_id}", {"operation_id": operation_id})
            if op.party_id != party_id:
                raise Forbidden(f"operation {operation_id} belongs to another party", {"operation_id": operation_id})

    def ingest(self, batch: PositionBatch, party_id: str, source: str, now: datetime,
               operation_id: str | None = None) -> IngestResult:
        """Screen, store and check a batch of one party's positions (see module docstring). A bad party,
        operation or source raises before anything is stored; bad rows are rejected and counted, never stored."""
        self._check_request(party_id, source, now, operation_id)
        with self._working():
            stored = self.store.stored(party_id, batch)  # fed before (this process or an earlier one): skipped
            checked = self.quality.check(batch.take(~stored), f"{party_id}/{source}").with_stored(stored)
            accepted, index, stale, counts = self._screened(checked, party_id)
            row_flags = checked.flags()
            flags = [",".join(sorted(row_flags[int(i)])) if int(i) in row_flags else None for i in index]
            saved = self.encounters.snapshot()
            try:
                keys = accepted.track_id.astype(str)
                firsts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else np.zeros(0, int)
                self.periods.estimate(f"{party_id}/{source}", accepted,
                                      [self.tracks.get((party_id, str(keys[k]))) for k in firsts.tolist()])
                states, alerts = self.conformance.observe(accepted, party_id, source, operation_id, self.tracks)
                self._commit(party_id, source, accepted, flags, states, alerts, counts, now)
            except BaseException:
                self.encounters.restore(saved)
                # the screen took the batch's rows as its tracks' last points: forget them, as a restart does, so
                # that the client's resend is screened afresh rather than refused as duplicates
                self.quality = FeedQuality(self.quality.config)
                raise
            rejected = [(int(i), str(r)) for i, r in zip(checked.rejected_index, checked.rejected_reason,
                                                          strict=True)]
            result = IngestResult(
                received=len(batch), accepted=len(accepted), rejected=sorted(rejected + stale),
                flagged=[(int(i), str(r)) for i, r in zip(checked.flagged_index, checked.flagged_reason,
                                                          strict=True)],
                counts=counts, alerts=alerts)
            if len(accepted) and self.settings.predict_interval_s < float("inf"):
                latest = float(accepted.t_s.max())
                if latest - self._last_predict_s >= self.settings.predict_interval_s:
                    result.alerts.extend(self.predict(now, latest))
        return result

    def _screened(self, checked: QualityResult, party_id: str) -> tuple[PositionBatch, npt.NDArray[np.intp],
                                                                      list[tuple[int, str]], dict[str, int]]:
        """The accepted rows (and their indexes in the batch); with a shared state, less the rows not newer than
        their track's latest state, which another process may have set (its feed-quality screen does not know
        them): they are rejected as ``duplicate`` (same time) or ``time_backwards``; and the counts."""
        accepted, index, counts = checked.accepted, checked.accepted_index, dict(checked.counts)
        if self.shared is None or not len(accepted):
            return accepted, index, [], counts
        latest = np.array([s.last.t_s if (s := self.tracks.get((party_id, str(t)))) is not None else -np.inf
                           for t in accepted.track_id], dtype=float)
        old = accepted.t_s <= latest
        if not old.any():
            return accepted, index, [], counts
        reasons = np.where(accepted.t_s[old] == latest[old], "duplicate", "time_backwards")
        stale = [(int(i), str(r)) for i, r in zip(index[old], reasons, strict=True)]
        for _, reason in stale:
            counts[f"rejected:{reason}"] = counts.get(f"rejected:{reason}", 0) + 1
        counts["accepted"] -= len(stale)
        counts["rejected"] = counts.get("rejected", 0) + len(stale)
        return accepted.take(~old), index[~old], stale, counts

    def _commit(self, party_id: str, source: str, accepted: PositionBatch, flags: list[str | None],
                states: dict[tuple[str, str], TrackState], alerts: list[TrackAlert], counts: dict[str, int],
                now: datetime) -> None:
        """One transaction: positions, track states, counters, alerts and their deliveries; then memory."""
        stamp = now.isoformat()
        with self.service.repo.transaction():
            self.store.add_positions(party_id, source, accepted, flags)
            self.store.put_tracks(TrackRecord(s.party_id, s.operation_id, s.source, s.conforming, s.last, stamp)
                                  for s in states.values())
            self.store.add_quality(f"{party_id}/{source}", counts)
            self._record_alerts(alerts, now)
        self.tracks.update(states)

    def _record_alerts(self, alerts: list[TrackAlert], now: datetime) -> None:
        """Inside the caller's transaction: store alerts and the deliveries that carry them."""
        if not alerts:
            return
        self.store.add_alerts(alerts)
        parties = {p.id: p for p in self.service.repo.list_parties()}
        book = self.service.airspace.book
        deliveries = [
            Delivery(id=str(uuid.uuid4()), notice_id=None, party_id=recipient, reason="alert",
                     payload=alert_payload(alert), created_at=now,
                     next_attempt_at=now if parties[recipient].webhook_url else None)
            for alert in alerts for recipient in recipients(alert, book) if recipient in parties
        ]
        self.service.repo.add_deliveries(deliveries)
        for alert in alerts:
            self.service.ledger.append("alert", alert.id, alert.model_dump(mode="json"), now, party_id=alert.party_id)
        self.service.commits.announce(d.party_id for d in deliveries)

    # ------------------------------------------------------------------ prediction
    def predict(self, now: datetime, at_s: float | None = None) -> list[TrackAlert]:
        """Predicted conflicts and volume entries of every fresh track at feed time ``at_s`` (default: the freshest
        track's time); raises new encounters once, clears those no longer predicted for ``clear_after_s``
        (:mod:`forewarn.service.track_prediction`)."""
        with self._working():
            fresh = self.prediction.fresh(self.tracks, at_s)
            if fresh is None:
                return []
            self._last_predict_s = self._predicted = fresh[0]
            saved = self.encounters.snapshot()
            try:
                alerts = self.prediction.run(fresh, self.tracks)
                if alerts:
                    with self.service.repo.transaction():
                        self._record_alerts(alerts, now)
            except BaseException:
                self.encounters.restore(saved)
                raise
        return alerts

    # ------------------------------------------------------------------ reads
    def refresh(self, max_age_s: float = REFRESH_S) -> None:
        """With a shared state: bring this tracker to it if it was last brought more than ``max_age_s`` (wall
        clock) ago, so that a read served by a process that is fed nothing still shows every process's tracks;
        nothing otherwise."""
        if self.shared is None or time.monotonic() - self._refreshed < max_age_s:
            return
        with self._working():
            pass

    def visible_tracks(self, viewer: str) -> list[TrackState]:
        """The latest state of the tracks ``viewer`` may see: its own and those of parties bound to it (with a
        shared state, as of at most :data:`REFRESH_S` ago). Where the owner's operations are coarsened for
        ``viewer``, ``conforming`` is withheld (``None``): it is decided on the exact volumes."""
        self.refresh()
        book = self.layers.airspace.book
        with self._lock:
            shown = sorted((s for s in self.tracks.values()
                            if s.party_id == viewer or self.layers.bound(viewer, s.party_id)),
                           key=lambda s: (s.party_id, s.last.track_id))
        return [replace(s, conforming=None) if s.conforming is not None and coarsening_for(viewer, s.party_id, book)
                is not None else s for s in shown]
