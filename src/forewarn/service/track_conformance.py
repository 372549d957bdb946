"""Conformance and intrusions of a batch of one party's positions: which tracks leave (or re-enter) the volumes
of their active operation, and which enter (or leave) another bound party's notified volumes, as transitions
row by row; the alerts of those transitions and the tracks' new states. Nothing is stored here.

Positions in WGS84 degrees and metres, feed times in POSIX seconds UTC; tolerances of
:class:`forewarn.service.track_model.TrackSettings`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from forewarn.core.model import OperationState
from forewarn.core.policy import coarsening_for
from forewarn.service.track_encounters import Encounters
from forewarn.service.track_layers import LiveLayers
from forewarn.service.track_model import TrackSettings, TrackState
from forewarn.tracks.alerts import TrackAlert
from forewarn.tracks.conformance import Tolerance, VolumeLayer
from forewarn.tracks.model import PositionBatch

Event = tuple[int, int, str, str]
"""A transition: (row, order within the row, kind, operation id)."""


class ConformanceCheck:
    """Transitions of sorted positions against the live volumes (see module docstring)."""

    def __init__(self, layers: LiveLayers, encounters: Encounters, settings: TrackSettings) -> None:
        self.layers = layers
        self.encounters = encounters
        self.settings = settings

    def observe(self, batch: PositionBatch, party_id: str, source: str, operation_id: str | None,
                tracks: dict[tuple[str, str], TrackState]) -> tuple[dict[tuple[str, str], TrackState],
                                                                    list[TrackAlert]]:
        """Conformance and intrusions of ``batch`` (sorted by track then time) of ``party_id``'s feed ``source``
        against the tracks' known states ``tracks``: the new states of its tracks and the alerts (opening or
        clearing encounters in :attr:`encounters`)."""
        n = len(batch)
        if not n:
            return {}, []
        keys = batch.track_id.astype(str)
        ops_of: dict[str, str | None] = {}
        for track_id in np.unique(keys):
            previous = tracks.get((party_id, str(track_id)))
            ops_of[str(track_id)] = operation_id or (previous.operation_id if previous else None)
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        ends = np.r_[starts[1:], n]
        track_ids = [str(keys[k]) for k in starts.tolist()]
        op_ids = [ops_of[t] for t in track_ids]
        stored = [tracks.get((party_id, t)) for t in track_ids]
        initial = [p.conforming if p is not None and p.operation_id == o else None
                   for p, o in zip(stored, op_ids, strict=True)]
        own_inside = self._own_inside(batch, keys, ops_of)
        events, conforming = self._conformance_events(own_inside, starts, ends, op_ids, initial)
        events += self._intrusion_events(batch, party_id, starts, ends, track_ids)
        lasts = batch.take(ends - 1).positions()
        states = {(party_id, t): TrackState(party_id, last, o, source, c)
                  for t, last, o, c in zip(track_ids, lasts, op_ids, conforming, strict=True)}
        return states, self._event_alerts(events, batch, party_id, ops_of)

    def _own_inside(self, batch: PositionBatch, keys: npt.NDArray[np.str_],
                    ops_of: dict[str, str | None]) -> npt.NDArray[np.bool_]:
        """Per row: inside one of its track's operation's volumes grown by the tolerance."""
        layer = self.layers.layer("tolerance", self.settings.tolerance)
        pos, vol = layer.containing(batch.lon_deg, batch.lat_deg, batch.alt_m, batch.t_s)
        own_inside = np.zeros(len(batch), dtype=bool)
        for p, v in zip(pos.tolist(), vol.tolist(), strict=True):
            if layer.refs[v].operation_id == ops_of[keys[p]]:
                own_inside[p] = True
        return own_inside

    def _conformance_events(self, own_inside: npt.NDArray[np.bool_], starts: npt.NDArray[np.intp],
                            ends: npt.NDArray[np.intp], op_ids: list[str | None],
                            initial: list[bool | None]) -> tuple[list[Event], list[bool | None]]:
        """Conformance transitions of every track at once (tracks of active operations only): each row compared
        with the one before it in its track, the first row with the track's stored state (1 inside, 0 outside,
        -1 unknown); and each track's conformance after the batch."""
        operations = self.layers.airspace.operations
        active = {op_id for op_id in {o for o in op_ids if o}
                  if (op := operations.get(op_id)) is not None and op.state == OperationState.ACTIVE}
        group_active = np.array([o in active for o in op_ids], dtype=bool)
        row_active = np.repeat(group_active, ends - starts)
        before = np.empty(len(own_inside), dtype=np.int8)
        before[1:] = own_inside[:-1]
        before[starts] = [-1 if c is None else int(c) for c in initial]
        row_op = np.repeat(np.array(op_ids, dtype=object), ends - starts)
        events = [(int(k), 0, "nonconforming", str(row_op[k]))
                  for k in np.flatnonzero(row_active & ~own_inside & (before != 0))]
        events += [(int(k), 0, "conforming", str(row_op[k]))
                   for k in np.flatnonzero(row_active & own_inside & (before == 0))]
        conforming = [bool(own_inside[e - 1]) if a else c
                      for e, a, c in zip(ends.tolist(), group_active.tolist(), initial, strict=True)]
        return events, conforming

    def _intrusion_events(self, batch: PositionBatch, party_id: str, starts: npt.NDArray[np.intp],
                          ends: npt.NDArray[np.intp], track_ids: list[str]) -> list[Event]:
        """Intrusion transitions (inside another bound party's notified volume, as this party is shown it, with no
        tolerance), only for tracks inside such a volume now or before."""
        exact = self.layers.layer("exact", Tolerance(), shown_to=party_id)
        pos, vol = exact.containing(batch.lon_deg, batch.lat_deg, batch.alt_m, batch.t_s)
        other = np.array([r.party_id != party_id and self.layers.bound(party_id, r.party_id) for r in exact.refs],
                         dtype=bool)
        keep = other[vol] if len(vol) else np.zeros(0, dtype=bool)
        intr_pos, intr_vol = pos[keep], vol[keep]  # sorted by position
        open_intrusions: dict[str, set[str]] = {}
        prefix = f"intrusion:{party_id}/"
        for key in self.encounters.open:
            if key.startswith(prefix):
                track, _, other_op = key[len(prefix):].partition("|")
                open_intrusions.setdefault(track, set()).add(other_op)
        groups = set(np.searchsorted(starts, intr_pos, side="right").tolist()) if len(intr_pos) else set()
        groups = {g - 1 for g in groups} | {g for g, t in enumerate(track_ids) if t in open_intrusions}
        events: list[Event] = []
        for g in sorted(groups):
            start, end, track_id = int(starts[g]), int(ends[g]), track_ids[g]
            lo, hi = np.searchsorted(intr_pos, [start, end])
            was_inside = open_intrusions.get(track_id, set())
            touched = {exact.refs[v].operation_id for v in intr_vol[lo:hi].tolist()} | was_inside
            for other_op in sorted(touched):
                events += _transitions(exact, intr_pos[lo:hi], intr_vol[lo:hi], start, end, other_op,
                                       other_op in was_inside)
        return events

    def _event_alerts(self, events: list[Event], batch: PositionBatch, party_id: str,
                      ops_of: dict[str, str | None]) -> list[TrackAlert]:
        """The alerts of the conformance and intrusion transitions ``events``, in row order."""
        alerts: list[TrackAlert] = []
        for row, _, kind, event_op in sorted(events):
            track_id = str(batch.track_id[row])
            if kind == "nonconforming":
                alerts.append(self._nonconforming(batch, row, party_id, track_id, event_op))
            elif kind == "conforming":
                alerts.append(self.encounters.alert(
                    "conforming", f"conformance:{party_id}/{track_id}", batch, row, party_id, track_id, event_op,
                    clears=True, message=f"track {track_id} is back inside operation {event_op}"))
            else:
                alerts.extend(self._intrusion(batch, row, party_id, track_id, ops_of[track_id], event_op,
                                              kind == "intrusion"))
        return alerts

    def _nonconforming(self, batch: PositionBatch, row: int, party_id: str, track_id: str, op_id: str) -> TrackAlert:
        """The track left its operation: the parties whose notified volumes, *as the track's owner is shown them*,
        are near are named to the owner; of those, the ones that see the owner's operation exactly are told (a
        conformance verdict is decided on the exact volumes: a party shown the operation coarsened is not told
        it, and gets its intrusion and predicted-entry alerts instead)."""
        layer = self.layers.layer("endanger", self.settings.endanger, shown_to=party_id)
        _, vol = layer.containing(batch.lon_deg[row:row + 1], batch.lat_deg[row:row + 1],
                                  batch.alt_m[row:row + 1], batch.t_s[row:row + 1])
        endangered = sorted({layer.refs[v].party_id for v in vol.tolist()} - {party_id})
        endangered = [p for p in endangered if self.layers.bound(party_id, p)]
        book = self.layers.airspace.book
        told = tuple(p for p in endangered if coarsening_for(p, party_id, book) is None)
        return self.encounters.alert(
            "nonconforming", f"conformance:{party_id}/{track_id}", batch, row, party_id, track_id, op_id,
            notify=told, message=f"track {track_id} left every volume of operation {op_id}"
            + (f"; near notified volumes of {', '.join(endangered)}" if endangered else ""))

    def _intrusion(self, batch: PositionBatch, row: int, party_id: str, track_id: str, op_id: str | None,
                   other_op: str, entered: bool) -> list[TrackAlert]:
        """An intrusion into ``other_op`` begins (clearing a predicted entry into it) or ends, at ``batch[row]``."""
        key = f"intrusion:{party_id}/{track_id}|{other_op}"
        alert = self.encounters.alert
        if not entered:
            opened = self.encounters.open[key]
            return [alert("cleared", key, batch, row, party_id, track_id, op_id, clears=True,
                          other_party_id=opened.other_party_id, other_operation_id=other_op,
                          message=f"track {track_id} left operation {other_op}")]
        other = self.layers.airspace.operations[other_op]
        out = [alert("intrusion", key, batch, row, party_id, track_id, op_id, other_party_id=other.party_id,
                     other_operation_id=other_op,
                     message=f"track {track_id} of {party_id} is inside operation {other_op} of {other.party_id}")]
        entry = self.encounters.open.get(f"entry:{party_id}/{track_id}|{other_op}")
        if entry is not None:
            out.append(alert("cleared", entry.encounter, batch, row, party_id, track_id, op_id, clears=True,
                             other_party_id=entry.other_party_id, other_operation_id=other_op,
                             message="predicted entry happened"))
        return out


def _transitions(exact: VolumeLayer, pos: npt.NDArray[np.intp], vol: npt.NDArray[np.intp], start: int, end: int,
                 other_op: str, was_inside: bool) -> list[Event]:
    """Entries into and exits from ``other_op`` of the track in rows [``start``, ``end``), given the rows
    ``pos`` inside volumes ``vol`` of ``exact`` and whether it was inside before the batch."""
    inside = np.zeros(end - start, dtype=bool)
    rows = pos[[exact.refs[v].operation_id == other_op for v in vol.tolist()]]
    inside[rows - start] = True
    was = np.empty(end - start, dtype=bool)
    was[0] = was_inside
    was[1:] = inside[:-1]
    return ([(start + int(k), 1, "intrusion", other_op) for k in np.flatnonzero(inside & ~was)]
            + [(start + int(k), 2, "left", other_op) for k in np.flatnonzero(~inside & was)])
