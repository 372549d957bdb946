"""The tracking use cases: ingest positions, check conformance and intrusions, predict conflicts and entries.

One :class:`Tracker` per service. ``ingest`` screens a batch of positions of one party's feed
(:mod:`forewarn.tracks.quality`), tests every accepted position against the live notified volumes in one
vectorised 4D query (:mod:`forewarn.tracks.conformance`), and in **one transaction** stores the positions, the
tracks' states, the feed counters, the alerts and the deliveries that carry them (the same outbox as notices, so
alerts reach parties over the same channels, SSE and webhooks). ``predict`` (run by ``ingest`` at most every
``predict_interval_s`` of feed time, or directly) extrapolates every fresh track in a straight line and raises
predicted conflicts between tracks of different parties (:mod:`forewarn.tracks.cpa`) and predicted entries into
other parties' notified volumes.

Who is told: the track's owner always; another party only when an agreement binds it to the owner (the same rule as
notices): tracks and volumes of a party bound by no agreement are neither compared with nor revealed to each other.
Times are feed times (POSIX seconds UTC); ``now`` is when the service recorded the alert (creation of its
deliveries).
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from pyproj import Geod

from forewarn.core.model import OperationState
from forewarn.core.records import Delivery
from forewarn.errors import Forbidden, InvalidInput, NotFound
from forewarn.store.repository import TrackStorage
from forewarn.store.sqlite.tracks import TrackRecord
from forewarn.tracks import cpa
from forewarn.tracks.alerts import AlertKind, TrackAlert, alert_payload, recipients
from forewarn.tracks.conformance import Tolerance, VolumeLayer
from forewarn.tracks.model import Position, PositionBatch
from forewarn.tracks.quality import FeedQuality, QualityConfig
from forewarn.units import feet_to_m, nm_to_m

if TYPE_CHECKING:
    from forewarn.service.notices import Forewarn

GEOD = Geod(ellps="WGS84")
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
    this), the feed period of each track's feed estimated from its positions' spacing (:meth:`Tracker.feed_period_s`),
    so that one missed pass (or one late position) never clears and re-raises an alert. Keep it at least twice the
    interval between prediction passes."""
    predict_interval_s: float = 1.0
    """Ingest runs a prediction pass when its freshest position is this much newer than the last pass (feed time);
    ``inf``: never (call :meth:`Tracker.predict` yourself)."""
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


def _dt(t_s: float) -> datetime:
    return datetime.fromtimestamp(t_s, tz=UTC)


class Tracker:
    """Live tracks of every party (see module docstring)."""

    def __init__(self, service: Forewarn, store: TrackStorage, settings: TrackSettings | None = None) -> None:
        self.service = service
        self.store = store
        self.settings = settings or TrackSettings()
        self.quality = FeedQuality(QualityConfig(max_speed_mps=self.settings.max_speed_mps))
        self._lock = threading.RLock()
        self._layers: dict[tuple[str, str | None], tuple[tuple[int, int], VolumeLayer]] = {}
        self.tracks: dict[tuple[str, str], TrackState] = {}
        self.open: dict[str, TrackAlert] = {}
        """Open encounters: encounter key -> the alert that opened it."""
        self._seen: dict[str, EncounterStatus] = {}
        """Predicted encounters: encounter key -> when it was raised and last predicted."""
        self._period: dict[str, float] = {}
        """Estimated feed period per ``party/source``, seconds (smoothed median spacing of a track's positions)."""
        self._last_predict_s = float("-inf")
        for record in store.list_tracks():
            self.tracks[(record.party_id, record.track_id)] = TrackState(
                record.party_id, record.last, record.operation_id, record.source, record.conforming)
        for alert in store.open_alerts():
            self.open[alert.encounter] = alert
            self._seen[alert.encounter] = EncounterStatus(alert.at.timestamp(), alert.at.timestamp())

    # ------------------------------------------------------------------ the live volumes
    def _layer(self, name: str, tolerance: Tolerance, shown_to: str | None = None) -> VolumeLayer:
        """The live volumes with ``tolerance`` (as ``shown_to`` is shown them, if given), rebuilt when the
        airspace or the agreements changed."""
        revision = (self.service.airspace.revision, self.service.airspace.book.revision)
        key = (name, shown_to)
        hit = self._layers.get(key)
        if hit is None or hit[0] != revision:
            hit = (revision, VolumeLayer(self.service.airspace, tolerance, shown_to))
            self._layers[key] = hit
        return hit[1]

    def _bound(self, a: str, b: str) -> bool:
        return a != b and bool(self.service.airspace.book.binding(a, b))

    # ------------------------------------------------------------------ ingest
    def ingest(self, batch: PositionBatch, party_id: str, source: str, now: datetime,
               operation_id: str | None = None) -> IngestResult:
        """Screen, store and check a batch of one party's positions (see module docstring). A bad party,
        operation or source raises before anything is stored; bad rows are rejected and counted, never stored."""
        if now.tzinfo is None:
            raise InvalidInput("now must be a timezone-aware UTC time")
        if not source or len(source) > 128:
            raise InvalidInput("source must be 1 to 128 characters", {"source": source})
        with self.service.committing(), self._lock:
            if self.service.repo.get_party(party_id) is None:
                raise InvalidInput(f"unknown party {party_id}", {"party_id": party_id})
            if operation_id is not None:
                op = self.service.repo.get_operation(operation_id)
                if op is None:
                    raise NotFound(f"no operation {operation_id}", {"operation_id": operation_id})
                if op.party_id != party_id:
                    raise Forbidden(f"operation {operation_id} belongs to another party",
                                    {"operation_id": operation_id})
            stored = self.store.stored(party_id, batch)  # fed before (this process or an earlier one): skipped
            checked = self.quality.check(batch.take(~stored), f"{party_id}/{source}").with_stored(stored)
            accepted = checked.accepted  # sorted by (track id, time)
            row_flags = checked.flags()
            flags = [",".join(sorted(row_flags[int(i)])) if int(i) in row_flags else None
                     for i in checked.accepted_index]
            saved = dict(self.open), dict(self._seen)
            try:
                self._estimate_period(party_id, source, accepted)
                states, alerts = self._observe(accepted, party_id, source, operation_id)
                self._commit(party_id, source, accepted, flags, states, alerts, checked.counts, now)
            except BaseException:
                self.open, self._seen = saved
                raise
            result = IngestResult(
                received=len(batch), accepted=len(accepted),
                rejected=[(int(i), str(r)) for i, r in zip(checked.rejected_index, checked.rejected_reason,
                                                           strict=True)],
                flagged=[(int(i), str(r)) for i, r in zip(checked.flagged_index, checked.flagged_reason,
                                                          strict=True)],
                counts=checked.counts, alerts=alerts)
            if len(accepted) and self.settings.predict_interval_s < float("inf"):
                latest = float(accepted.t_s.max())
                if latest - self._last_predict_s >= self.settings.predict_interval_s:
                    result.alerts.extend(self.predict(now, latest))
        return result

    def _observe(self, batch: PositionBatch, party_id: str, source: str,
                 operation_id: str | None) -> tuple[dict[tuple[str, str], TrackState], list[TrackAlert]]:
        """Conformance and intrusions of sorted positions: the new track states and the alerts (nothing stored)."""
        n = len(batch)
        if not n:
            return {}, []
        keys = batch.track_id.astype(str)
        ops_of: dict[str, str | None] = {}
        for track_id in np.unique(keys):
            previous = self.tracks.get((party_id, str(track_id)))
            ops_of[str(track_id)] = operation_id or (previous.operation_id if previous else None)
        # conformance: inside one of the own operation's volumes grown by the tolerance
        layer = self._layer("tolerance", self.settings.tolerance)
        pos, vol = layer.containing(batch.lon_deg, batch.lat_deg, batch.alt_m, batch.t_s)
        own_inside = np.zeros(n, dtype=bool)
        for p, v in zip(pos.tolist(), vol.tolist(), strict=True):
            if layer.refs[v].operation_id == ops_of[keys[p]]:
                own_inside[p] = True
        # intrusion: inside another bound party's notified volume as notified (no tolerance)
        exact = self._layer("exact", Tolerance(), shown_to=party_id)  # as this party is shown them
        pos, vol = exact.containing(batch.lon_deg, batch.lat_deg, batch.alt_m, batch.t_s)
        other = np.array([r.party_id != party_id and self._bound(party_id, r.party_id) for r in exact.refs],
                         dtype=bool)
        keep = other[vol] if len(vol) else np.zeros(0, dtype=bool)
        intr_pos, intr_vol = pos[keep], vol[keep]  # sorted by position
        active = {op_id for op_id in {o for o in ops_of.values() if o}
                  if (op := self.service.airspace.operations.get(op_id)) is not None
                  and op.state == OperationState.ACTIVE}
        open_intrusions: dict[str, set[str]] = {}
        for key in self.open:
            if key.startswith(f"intrusion:{party_id}/"):
                track, _, other_op = key[len(f"intrusion:{party_id}/"):].partition("|")
                open_intrusions.setdefault(track, set()).add(other_op)
        events: list[tuple[int, int, str, str]] = []  # (row, order, kind, operation id)
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        ends = np.r_[starts[1:], n]
        track_ids = [str(keys[k]) for k in starts.tolist()]
        op_ids = [ops_of[t] for t in track_ids]
        stored = [self.tracks.get((party_id, t)) for t in track_ids]
        initial = [p.conforming if p is not None and p.operation_id == o else None
                   for p, o in zip(stored, op_ids, strict=True)]
        # conformance transitions of every track at once: compare each row with the one before it in its track
        # (the first row of a track with the track's stored state; 1 inside, 0 outside, -1 unknown)
        group_active = np.array([o in active for o in op_ids], dtype=bool)
        row_active = np.repeat(group_active, ends - starts)
        before = np.empty(n, dtype=np.int8)
        before[1:] = own_inside[:-1]
        before[starts] = [-1 if c is None else int(c) for c in initial]
        row_op = np.repeat(np.array(op_ids, dtype=object), ends - starts)
        events += [(int(k), 0, "nonconforming", str(row_op[k]))
                   for k in np.flatnonzero(row_active & ~own_inside & (before != 0))]
        events += [(int(k), 0, "conforming", str(row_op[k]))
                   for k in np.flatnonzero(row_active & own_inside & (before == 0))]
        conforming = [bool(own_inside[e - 1]) if a else c
                      for e, a, c in zip(ends.tolist(), group_active.tolist(), initial, strict=True)]
        # intrusion transitions, only for tracks inside another party's volume now or before
        groups = set(np.searchsorted(starts, intr_pos, side="right").tolist()) if len(intr_pos) else set()
        groups = {g - 1 for g in groups} | {g for g, t in enumerate(track_ids) if t in open_intrusions}
        for g in sorted(groups):
            start, end, track_id = int(starts[g]), int(ends[g]), track_ids[g]
            lo, hi = np.searchsorted(intr_pos, [start, end])
            touched = {exact.refs[v].operation_id for v in intr_vol[lo:hi].tolist()} | open_intrusions.get(track_id,
                                                                                                             set())
            for other_op in sorted(touched):
                inside = np.zeros(end - start, dtype=bool)
                rows = intr_pos[lo:hi][[exact.refs[v].operation_id == other_op for v in intr_vol[lo:hi].tolist()]]
                inside[rows - start] = True
                was = np.empty(end - start, dtype=bool)
                was[0] = other_op in open_intrusions.get(track_id, set())
                was[1:] = inside[:-1]
                events += [(start + int(k), 1, "intrusion", other_op) for k in np.flatnonzero(inside & ~was)]
                events += [(start + int(k), 2, "left", other_op) for k in np.flatnonzero(~inside & was)]
        lasts = batch.take(ends - 1).positions()
        states = {(party_id, t): TrackState(party_id, last, o, source, c)
                  for t, last, o, c in zip(track_ids, lasts, op_ids, conforming, strict=True)}
        return states, self._event_alerts(events, batch, party_id, ops_of)

    def _event_alerts(self, events: list[tuple[int, int, str, str]], batch: PositionBatch, party_id: str,
                      ops_of: dict[str, str | None]) -> list[TrackAlert]:
        """The alerts of the conformance and intrusion transitions ``events`` (row, order, kind, operation id),
        in row order."""
        alerts: list[TrackAlert] = []
        for row, _, kind, event_op in sorted(events):
            track_id = str(batch.track_id[row])
            own = ops_of[track_id]
            if kind == "nonconforming":
                alerts.append(self._nonconforming(batch, row, party_id, track_id, event_op))
            elif kind == "conforming":
                alerts.append(self._alert("conforming", f"conformance:{party_id}/{track_id}", batch, row, party_id,
                                          track_id, event_op, clears=True,
                                          message=f"track {track_id} is back inside operation {event_op}"))
            else:
                alerts.extend(self._intrusion(batch, row, party_id, track_id, own, event_op, kind == "intrusion"))
        return alerts

    def _alert(self, kind: AlertKind, encounter: str, batch: PositionBatch, row: int, party_id: str, track_id: str,
               op_id: str | None, *, clears: bool = False, message: str, **extra: object) -> TrackAlert:
        """A new alert at ``batch[row]``; a clearing one ends (and names) the open alert of ``encounter``."""
        opened = self.open.get(encounter) if clears else None
        alt = float(batch.alt_m[row])
        alert = TrackAlert.model_validate({
            "id": str(uuid.uuid4()), "kind": kind, "encounter": encounter, "at": _dt(float(batch.t_s[row])),
            "party_id": party_id, "track_id": track_id, "operation_id": op_id,
            "lat_deg": float(batch.lat_deg[row]), "lon_deg": float(batch.lon_deg[row]),
            "alt_m": None if np.isnan(alt) else alt, "clears": opened.id if opened else None,
            "message": message, **extra,
        })
        if clears:
            self.open.pop(encounter, None)
            self._seen.pop(encounter, None)
        else:
            self.open[encounter] = alert
        return alert

    def _nonconforming(self, batch: PositionBatch, row: int, party_id: str, track_id: str, op_id: str) -> TrackAlert:
        layer = self._layer("endanger", self.settings.endanger)
        _, vol = layer.containing(batch.lon_deg[row:row + 1], batch.lat_deg[row:row + 1],
                                    batch.alt_m[row:row + 1], batch.t_s[row:row + 1])
        endangered = sorted({layer.refs[v].party_id for v in vol.tolist()} - {party_id})
        endangered = [p for p in endangered if self._bound(party_id, p)]
        return self._alert("nonconforming", f"conformance:{party_id}/{track_id}", batch, row, party_id, track_id,
                           op_id, notify=tuple(endangered),
                           message=f"track {track_id} left every volume of operation {op_id}"
                                   + (f"; near notified volumes of {', '.join(endangered)}" if endangered else ""))

    def _intrusion(self, batch: PositionBatch, row: int, party_id: str, track_id: str, op_id: str | None,
                   other_op: str, entered: bool) -> list[TrackAlert]:
        """An intrusion into ``other_op`` begins (clearing a predicted entry into it) or ends, at ``batch[row]``."""
        key = f"intrusion:{party_id}/{track_id}|{other_op}"
        if not entered:
            opened = self.open[key]
            return [self._alert("cleared", key, batch, row, party_id, track_id, op_id, clears=True,
                                other_party_id=opened.other_party_id, other_operation_id=other_op,
                                message=f"track {track_id} left operation {other_op}")]
        other = self.service.airspace.operations[other_op]
        out = [self._alert("intrusion", key, batch, row, party_id, track_id, op_id,
                           other_party_id=other.party_id, other_operation_id=other_op,
                           message=f"track {track_id} of {party_id} is inside operation {other_op} of "
                                   f"{other.party_id}")]
        entry = self.open.get(f"entry:{party_id}/{track_id}|{other_op}")
        if entry is not None:
            out.append(self._alert("cleared", entry.encounter, batch, row, party_id, track_id, op_id,
                                   clears=True, other_party_id=entry.other_party_id,
                                   other_operation_id=other_op, message="predicted entry happened"))
        return out

    # ------------------------------------------------------------------ persistence
    def _commit(self, party_id: str, source: str, accepted: PositionBatch, flags: list[str | None],
                states: dict[tuple[str, str], TrackState], alerts: list[TrackAlert], counts: dict[str, int],
                now: datetime) -> None:
        """One transaction: positions, track states, counters, alerts and their deliveries; then memory."""
        repo = self.service.repo
        stamp = now.isoformat()
        with repo.transaction():
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
        track's time); raises new encounters once, clears those no longer predicted for ``clear_after_s``."""
        with self.service.committing(), self._lock:
            fresh = self._fresh(at_s)
            if fresh is None:
                return []
            ref_s, states, vectors = fresh
            self._last_predict_s = ref_s
            saved = dict(self.open), dict(self._seen)
            try:
                alerts = self._predicted_conflicts(ref_s, states, vectors)
                alerts += self._predicted_entries(ref_s, states, vectors)
                alerts += self._expire(ref_s)
                if alerts:
                    with self.service.repo.transaction():
                        self._record_alerts(alerts, now)
            except BaseException:
                self.open, self._seen = saved
                raise
        return alerts

    def _fresh(self, at_s: float | None) -> tuple[float, list[TrackState], cpa.TrackVectors] | None:
        """The tracks heard from within ``stale_s`` before the reference time (default: the freshest report),
        extrapolated to it along their geodesic; row k of the vectors is ``states[k]``. Tracks lacking altitude,
        ground speed or track cannot be extrapolated and are left out."""
        if not self.tracks:
            return None
        ref_s = at_s if at_s is not None else max(s.last.t_s for s in self.tracks.values())
        candidates = [s for s in self.tracks.values() if ref_s - self.settings.stale_s <= s.last.t_s <= ref_s]
        if not candidates:
            return None
        batch = PositionBatch.from_positions([s.last for s in candidates])
        labels = [f"{s.party_id}/{s.last.track_id}" for s in candidates]
        batch.track_id = np.array(labels, dtype=object)
        code = {label: k for k, label in enumerate(labels)}
        vectors = cpa.TrackVectors.from_batch(batch, code, at_s=ref_s)
        if not len(vectors):
            return None
        states = [candidates[int(k)] for k in vectors.group]
        return ref_s, states, vectors

    def _class_of(self, state: TrackState) -> str:
        op = self.service.airspace.operations.get(state.operation_id or "")
        return op.activity_class if op is not None else TRACK_CLASS

    def _predicted_conflicts(self, ref_s: float, states: list[TrackState],
                             vectors: cpa.TrackVectors) -> list[TrackAlert]:
        """Pairs of tracks of different, bound parties predicted to lose separation (the minima of their
        agreements for the two activity classes; a track with no operation has class ``track``)."""
        keys = [(s.party_id, self._class_of(s)) for s in states]
        combos = sorted(set(keys))
        index = {c: k for k, c in enumerate(combos)}
        group = np.array([index[k] for k in keys], dtype=np.int64)
        book = self.service.airspace.book

        def minima(ga: int, gb: int) -> tuple[float, float] | None:
            (pa, ca), (pb, cb) = combos[ga], combos[gb]
            found = book.minima(pa, pb, ca, cb) if pa != pb else None
            if found is None or found[0].horizontal_m <= 0 or found[0].vertical_m <= 0:
                return None
            return found[0].horizontal_m, found[0].vertical_m

        grouped = cpa.TrackVectors(vectors.lat_deg, vectors.lon_deg, vectors.alt_m, vectors.gs_mps, vectors.track_deg,
                                 vectors.vs_mps, group)
        hits = cpa.predict_conflicts(grouped, minima, lookahead_s=self.settings.lookahead_s)
        out: list[TrackAlert] = []
        for k in range(len(hits)):
            ia, ib = int(hits.i[k]), int(hits.j[k])
            a, b = states[ia], states[ib]
            if (a.party_id, a.last.track_id) > (b.party_id, b.last.track_id):
                a, b, ia, ib = b, a, ib, ia
            key = f"conflict:{a.party_id}/{a.last.track_id}|{b.party_id}/{b.last.track_id}"
            if self._saw(key, ref_s):
                continue
            tlos, dist = float(hits.t_los_s[k]), float(hits.h_cpa_m[k])
            out.append(self._alert(
                "predicted_conflict", key, _row(vectors, ia, ref_s), 0, a.party_id, a.last.track_id,
                a.operation_id, other_party_id=b.party_id, other_track_id=b.last.track_id,
                other_operation_id=b.operation_id, time_to_los_s=tlos, time_to_cpa_s=float(hits.t_cpa_s[k]),
                min_distance_m=dist, vertical_at_cpa_m=float(hits.v_cpa_m[k]),
                message=f"tracks {a.last.track_id} ({a.party_id}) and {b.last.track_id} ({b.party_id}) predicted to "
                        f"lose separation in {tlos:.0f} s; minimum distance {dist:.0f} m"))
        return out

    def _predicted_entries(self, ref_s: float, states: list[TrackState], v: cpa.TrackVectors) -> list[TrackAlert]:
        """Entries into other (bound) parties' notified volumes along each track's straight path, sampled every
        ``entry_step_s`` over the look-ahead (a footprint crossed between two samples is missed: keep the step
        small against footprint sizes / speeds)."""
        out: list[TrackAlert] = []
        parties = np.array([s.party_id for s in states], dtype=object)
        for party in sorted(set(parties.tolist())):
            # each party's tracks against the volumes as that party is shown them (coarsened where agreed): an
            # alert must not let probe positions find an exact boundary the party may not see
            layer = self._layer("exact", Tolerance(), shown_to=party)
            out += self._entries(ref_s, states, v, np.flatnonzero(parties == party), layer)
        return out

    def _entries(self, ref_s: float, states: list[TrackState], v: cpa.TrackVectors, rows_of: npt.NDArray[np.intp],
                 layer: VolumeLayer) -> list[TrackAlert]:
        """:meth:`_predicted_entries` for the tracks ``rows_of`` (rows of ``v``) against ``layer``."""
        horizon = self.settings.lookahead_s
        steps = np.arange(0.0, horizon + 1e-9, self.settings.entry_step_s)
        n, s = len(rows_of), len(steps)
        dt_all = np.tile(steps, n)
        rows_all = np.repeat(rows_of, s)
        lon_all, lat_all, _ = GEOD.fwd(v.lon_deg[rows_all], v.lat_deg[rows_all], v.track_deg[rows_all],
                                       v.gs_mps[rows_all] * dt_all)
        lon_all, lat_all = np.asarray(lon_all).reshape(n, s), np.asarray(lat_all).reshape(n, s)
        # the screen is the polyline through the very samples tested below: conservative by construction
        path, vol = layer.crossed_by(lon_all, lat_all)
        seg = rows_of[path]
        keep = [k for k in range(len(seg)) if self._bound(states[seg[k]].party_id, layer.refs[vol[k]].party_id)]
        if not keep:
            return []
        path, seg, vol = path[keep], seg[keep], vol[keep]
        cand = np.repeat(np.arange(len(seg)), s)
        dt = np.tile(steps, len(seg))
        rows = seg[cand]
        lon = lon_all[path].ravel()
        lat = lat_all[path].ravel()
        alt = v.alt_m[rows] + v.vs_mps[rows] * dt
        pos, hit_vol = layer.containing(lon, lat, alt, ref_s + dt)
        first: dict[int, float] = {}
        for p, w in zip(pos.tolist(), hit_vol.tolist(), strict=True):
            k = int(cand[p])
            if w == vol[k] and (k not in first or dt[p] < first[k]):
                first[k] = float(dt[p])
        out: list[TrackAlert] = []
        for k, t_entry in sorted(first.items()):
            if t_entry <= 0:
                continue  # already inside: an intrusion, not a prediction
            state, ref = states[seg[k]], layer.refs[vol[k]]
            key = f"entry:{state.party_id}/{state.last.track_id}|{ref.operation_id}"
            inside = f"intrusion:{state.party_id}/{state.last.track_id}|{ref.operation_id}" in self.open
            if self._saw(key, ref_s) or inside:
                continue
            out.append(self._alert(
                "predicted_entry", key, _row(v, int(seg[k]), ref_s), 0, state.party_id, state.last.track_id,
                state.operation_id, other_party_id=ref.party_id, other_operation_id=ref.operation_id,
                time_to_entry_s=t_entry,
                message=f"track {state.last.track_id} ({state.party_id}) predicted to enter operation "
                        f"{ref.operation_id} of {ref.party_id} in {t_entry:.0f} s"))
        return out

    def _saw(self, key: str, ref_s: float) -> bool:
        """Note that encounter ``key`` is predicted by the pass at ``ref_s``; whether it is already open (then this
        pass updates it rather than raising it again)."""
        status = self._seen.get(key)
        if key in self.open and status is not None:
            self._seen[key] = replace(status, last_seen_s=ref_s, updates=status.updates + 1)
            return True
        self._seen[key] = EncounterStatus(ref_s, ref_s)
        return key in self.open

    def feed_period_s(self, party_id: str, source: str) -> float:
        """The estimated period of ``party_id``'s feed ``source`` (seconds; 0 before two positions of a track)."""
        return self._period.get(f"{party_id}/{source}", 0.0)

    def _estimate_period(self, party_id: str, source: str, batch: PositionBatch) -> None:
        """Update the feed period of ``party_id/source`` from the spacing of the positions of each track in the
        sorted ``batch`` and since each track's last known position: the median positive spacing, smoothed over
        batches (weight 0.3 for the new batch) so that one gap does not double it."""
        if not len(batch):
            return
        keys = batch.track_id.astype(str)
        t = batch.t_s
        same = keys[1:] == keys[:-1]
        gaps = [(t[1:] - t[:-1])[same]]
        starts = np.flatnonzero(np.r_[True, ~same])
        before = [self.tracks.get((party_id, str(keys[k]))) for k in starts.tolist()]
        gaps.append(np.array([t[k] - b.last.t_s for k, b in zip(starts.tolist(), before, strict=True)
                              if b is not None], dtype=float))
        spacing = np.concatenate(gaps)
        spacing = spacing[np.isfinite(spacing) & (spacing > 0)]
        if not len(spacing):
            return
        new = float(np.median(spacing))
        feed = f"{party_id}/{source}"
        old = self._period.get(feed)
        self._period[feed] = new if old is None else 0.7 * old + 0.3 * new

    def _clear_after_s(self, opened: TrackAlert) -> float:
        """How long encounter ``opened`` must be absent to clear: max(2 feed periods of its tracks' feeds,
        ``clear_after_s``)."""
        periods = [0.0]
        for party, track in ((opened.party_id, opened.track_id), (opened.other_party_id, opened.other_track_id)):
            state = self.tracks.get((party or "", track or ""))
            if state is not None:
                periods.append(self.feed_period_s(state.party_id, state.source))
        return max(2.0 * max(periods), self.settings.clear_after_s)

    def _expire(self, ref_s: float) -> list[TrackAlert]:
        """Clear predicted encounters not predicted again for :meth:`_clear_after_s`."""
        out: list[TrackAlert] = []
        for key, opened in list(self.open.items()):
            if opened.kind not in ("predicted_conflict", "predicted_entry"):
                continue
            status = self._seen.get(key, EncounterStatus(opened.at.timestamp(), opened.at.timestamp()))
            if ref_s - status.last_seen_s < self._clear_after_s(opened):
                continue
            state = self.tracks.get((opened.party_id, opened.track_id))
            # cleared at the time of this pass, with the track's last known position
            last = replace(state.last, t_s=ref_s) if state else Position(opened.track_id, ref_s,
                                                                          opened.lat_deg or 0.0, opened.lon_deg or 0.0)
            row_batch = PositionBatch.from_positions([last])
            out.append(self._alert("cleared", key, row_batch, 0, opened.party_id, opened.track_id,
                                   opened.operation_id, clears=True, other_party_id=opened.other_party_id,
                                   other_track_id=opened.other_track_id,
                                   other_operation_id=opened.other_operation_id,
                                   message=f"{opened.kind.replace('_', ' ')} over (predicted "
                                           f"{status.updates + 1} times over {status.last_seen_s - status.raised_s:.0f}"
                                           f" s): {opened.message}"))
        return out

    # ------------------------------------------------------------------ reads
    def visible_tracks(self, viewer: str) -> list[TrackState]:
        """The latest state of the tracks ``viewer`` may see: its own and those of parties bound to it."""
        with self._lock:
            return sorted((s for s in self.tracks.values()
                           if s.party_id == viewer or self._bound(viewer, s.party_id)),
                          key=lambda s: (s.party_id, s.last.track_id))


def _row(v: cpa.TrackVectors, k: int, t_s: float) -> PositionBatch:
    """Row ``k`` of state vectors as a one-row batch (for the position an alert carries)."""
    return PositionBatch.from_positions([Position("", t_s, float(v.lat_deg[k]), float(v.lon_deg[k]),
                                                  float(v.alt_m[k]), float(v.gs_mps[k]), float(v.track_deg[k]),
                                                  float(v.vs_mps[k]))])
