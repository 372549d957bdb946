"""Prediction passes over the live tracks: every fresh track extrapolated in a straight line over the look-ahead;
predicted conflicts between tracks of different, bound parties (:mod:`forewarn.tracks.cpa`), predicted entries into
other bound parties' notified volumes, and the clearing of encounters no longer predicted (hysteresis:
:meth:`Prediction.clear_after_s`). Nothing is stored here.

Feed times in POSIX seconds UTC; distances in metres; positions WGS84.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import numpy.typing as npt
from pyproj import Geod

from forewarn.service.track_encounters import Encounters, FeedPeriods
from forewarn.service.track_layers import LiveLayers
from forewarn.service.track_model import TrackSettings, TrackState, vector_row
from forewarn.tracks import cpa
from forewarn.tracks.alerts import TrackAlert
from forewarn.tracks.conformance import Tolerance, VolumeLayer
from forewarn.tracks.model import Position, PositionBatch

GEOD = Geod(ellps="WGS84")

Fresh = tuple[float, list[TrackState], cpa.TrackVectors]
"""A pass's reference time, its tracks, and their state vectors at that time (row k is track k)."""


class Prediction:
    """One prediction pass at a time over the tracks it is given (see module docstring)."""

    def __init__(self, layers: LiveLayers, encounters: Encounters, periods: FeedPeriods,
                 settings: TrackSettings) -> None:
        self.layers = layers
        self.encounters = encounters
        self.periods = periods
        self.settings = settings

    def fresh(self, tracks: dict[tuple[str, str], TrackState], at_s: float | None) -> Fresh | None:
        """The tracks heard from within ``stale_s`` before the reference time (default: the freshest report),
        extrapolated to it along their geodesic. Tracks lacking altitude, ground speed or track cannot be
        extrapolated and are left out."""
        if not tracks:
            return None
        ref_s = at_s if at_s is not None else max(s.last.t_s for s in tracks.values())
        candidates = [s for s in tracks.values() if ref_s - self.settings.stale_s <= s.last.t_s <= ref_s]
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

    def run(self, fresh: Fresh, tracks: dict[tuple[str, str], TrackState]) -> list[TrackAlert]:
        """The alerts of one pass: new predicted conflicts and entries, and encounters cleared."""
        ref_s, states, vectors = fresh
        alerts = self.conflicts(ref_s, states, vectors)
        alerts += self.entries(ref_s, states, vectors)
        return alerts + self.expire(ref_s, tracks)

    def conflicts(self, ref_s: float, states: list[TrackState], vectors: cpa.TrackVectors) -> list[TrackAlert]:
        """Pairs of tracks of different, bound parties predicted to lose separation (the minima of their
        agreements for the two activity classes; a track with no operation has class ``track``)."""
        keys = [(s.party_id, self.layers.class_of(s)) for s in states]
        combos = sorted(set(keys))
        index = {c: k for k, c in enumerate(combos)}
        group = np.array([index[k] for k in keys], dtype=np.int64)
        book = self.layers.airspace.book

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
            if self.encounters.saw(key, ref_s):
                continue
            tlos, dist = float(hits.t_los_s[k]), float(hits.h_cpa_m[k])
            out.append(self.encounters.alert(
                "predicted_conflict", key, vector_row(vectors, ia, ref_s), 0, a.party_id, a.last.track_id,
                a.operation_id, other_party_id=b.party_id, other_track_id=b.last.track_id,
                other_operation_id=b.operation_id, time_to_los_s=tlos, time_to_cpa_s=float(hits.t_cpa_s[k]),
                min_distance_m=dist, vertical_at_cpa_m=float(hits.v_cpa_m[k]),
                message=f"tracks {a.last.track_id} ({a.party_id}) and {b.last.track_id} ({b.party_id}) predicted to "
                        f"lose separation in {tlos:.0f} s; minimum distance {dist:.0f} m"))
        return out

    def entries(self, ref_s: float, states: list[TrackState], v: cpa.TrackVectors) -> list[TrackAlert]:
        """Entries into other (bound) parties' notified volumes along each track's straight path, sampled every
        ``entry_step_s`` over the look-ahead (a footprint crossed between two samples is missed: keep the step
        small against footprint sizes / speeds)."""
        out: list[TrackAlert] = []
        parties = np.array([s.party_id for s in states], dtype=object)
        for party in sorted(set(parties.tolist())):
            # each party's tracks against the volumes as that party is shown them (coarsened where agreed): an
            # alert must not let probe positions find an exact boundary the party may not see
            layer = self.layers.layer("exact", Tolerance(), shown_to=party)
            out += self._entries(ref_s, states, v, np.flatnonzero(parties == party), layer)
        return out

    def _entries(self, ref_s: float, states: list[TrackState], v: cpa.TrackVectors, rows_of: npt.NDArray[np.intp],
                 layer: VolumeLayer) -> list[TrackAlert]:
        """:meth:`entries` for the tracks ``rows_of`` (rows of ``v``) against ``layer``."""
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
        keep = [k for k in range(len(seg)) if self.layers.bound(states[seg[k]].party_id, layer.refs[vol[k]].party_id)]
        if not keep:
            return []
        path, seg, vol = path[keep], seg[keep], vol[keep]
        cand = np.repeat(np.arange(len(seg)), s)
        dt = np.tile(steps, len(seg))
        rows = seg[cand]
        alt = v.alt_m[rows] + v.vs_mps[rows] * dt
        pos, hit_vol = layer.containing(lon_all[path].ravel(), lat_all[path].ravel(), alt, ref_s + dt)
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
            inside = f"intrusion:{state.party_id}/{state.last.track_id}|{ref.operation_id}" in self.encounters.open
            if self.encounters.saw(key, ref_s) or inside:
                continue
            out.append(self.encounters.alert(
                "predicted_entry", key, vector_row(v, int(seg[k]), ref_s), 0, state.party_id, state.last.track_id,
                state.operation_id, other_party_id=ref.party_id, other_operation_id=ref.operation_id,
                time_to_entry_s=t_entry,
                message=f"track {state.last.track_id} ({state.party_id}) predicted to enter operation "
                        f"{ref.operation_id} of {ref.party_id} in {t_entry:.0f} s"))
        return out

    def clear_after_s(self, opened: TrackAlert, tracks: dict[tuple[str, str], TrackState]) -> float:
        """How long encounter ``opened`` must be absent to clear: max(2 feed periods of its tracks' feeds,
        ``clear_after_s``)."""
        periods = [0.0]
        for party, track in ((opened.party_id, opened.track_id), (opened.other_party_id, opened.other_track_id)):
            state = tracks.get((party or "", track or ""))
            if state is not None:
                periods.append(self.periods.period_s(f"{state.party_id}/{state.source}"))
        return max(2.0 * max(periods), self.settings.clear_after_s)

    def expire(self, ref_s: float, tracks: dict[tuple[str, str], TrackState]) -> list[TrackAlert]:
        """Clear predicted encounters not predicted again for :meth:`clear_after_s`."""
        out: list[TrackAlert] = []
        for key, opened in list(self.encounters.open.items()):
            if opened.kind not in ("predicted_conflict", "predicted_entry"):
                continue
            status = self.encounters.status(key)
            if ref_s - status.last_seen_s < self.clear_after_s(opened, tracks):
                continue
            state = tracks.get((opened.party_id, opened.track_id))
            # cleared at the time of this pass, with the track's last known position
            last = replace(state.last, t_s=ref_s) if state else Position(opened.track_id, ref_s,
                                                                          opened.lat_deg or 0.0, opened.lon_deg or 0.0)
            out.append(self.encounters.alert(
                "cleared", key, PositionBatch.from_positions([last]), 0, opened.party_id, opened.track_id,
                opened.operation_id, clears=True, other_party_id=opened.other_party_id,
                other_track_id=opened.other_track_id, other_operation_id=opened.other_operation_id,
                message=f"{opened.kind.replace('_', ' ')} over (predicted {status.updates + 1} times over "
                        f"{status.last_seen_s - status.raised_s:.0f} s): {opened.message}"))
        return out
