"""The live-track store of a PostgreSQL database shared by several service processes: the track tables of
:class:`~forewarn.store.postgres.tracks.PostgresTrackStore` plus the reads and writes that keep each process's
tracker a replica of one shared tracker state (:class:`~forewarn.store.repository.SharedTrackState`).

Migration 8 numbers every change of ``tracks``, ``track_alerts`` and ``tracker_values`` with one sequence
(``track_state_seq``, stamped by triggers), in commit order since every write transaction holds the writer lock.
Units as in :mod:`forewarn.tracks.model`; feed times in POSIX seconds UTC.
"""

from __future__ import annotations

from collections.abc import Sequence

from forewarn.store.postgres.tracks import TRACK_COLUMNS, PostgresTrackStore, track_record
from forewarn.store.repository import AlertState, TrackStateChanges
from forewarn.tracks.alerts import TrackAlert

_ALERT = "SELECT doc::text, open, last_seen_s, updates, seq FROM track_alerts"


class SharedPostgresTrackStore(PostgresTrackStore):
    """Track tables and their change numbering (see module docstring)."""

    def track_state_head(self) -> int:
        """The highest change number stored (0 when none)."""
        row = self.repo.row("SELECT greatest((SELECT max(seq) FROM tracks), (SELECT max(seq) FROM track_alerts), "
                            "(SELECT max(seq) FROM tracker_values), 0)")
        return int(row[0]) if row else 0

    def track_changes_since(self, seq: int) -> TrackStateChanges:
        """Every track state, alert and value written after change ``seq`` (each in change order), and the
        highest change number read (``seq`` itself when nothing changed)."""
        where = (" WHERE seq > %s ORDER BY seq", (seq,))
        return self._read(seq, where, where, where, head_from_rows=True)

    def shared_state(self) -> TrackStateChanges:
        """The whole shared state: every track, the open alerts, every value; ``head`` is read first (a change
        committed while reading is then read again by the next :meth:`track_changes_since`, which is harmless)."""
        head = self.track_state_head()
        return self._read(head, (" ORDER BY party_id, track_id", ()), (" WHERE open ORDER BY at, id", ()),
                          (" ORDER BY name", ()), head_from_rows=False)

    def _read(self, head: int, tracks_where: tuple[str, tuple[int, ...]], alerts_where: tuple[str, tuple[int, ...]],
              values_where: tuple[str, tuple[int, ...]], *, head_from_rows: bool) -> TrackStateChanges:
        """The rows selected by each ``where``; the position is ``head``, or (``head_from_rows``: read under the
        writer lock, so no commit can interleave) the highest change number read."""
        tracks = self.repo.rows(f"SELECT {TRACK_COLUMNS}, seq FROM tracks" + tracks_where[0], tracks_where[1])
        alerts = self.repo.rows(_ALERT + alerts_where[0], alerts_where[1])
        values = self.repo.rows("SELECT name, value, seq FROM tracker_values" + values_where[0], values_where[1])
        return TrackStateChanges(
            head=max([head] + [int(r[-1]) for rows in (tracks, alerts, values) for r in rows]) if head_from_rows
            else head,
            tracks=[track_record(r) for r in tracks],
            alerts=[AlertState(TrackAlert.model_validate_json(r[0]), bool(r[1]), r[2], int(r[3])) for r in alerts],
            values={str(r[0]): float(r[1]) for r in values})

    def put_encounter_status(self, statuses: Sequence[tuple[str, float, int]]) -> None:
        """Record when open predicted encounters were last predicted (alert id, feed seconds, passes since)."""
        self.repo.execute_many("UPDATE track_alerts SET last_seen_s = %s, updates = %s WHERE id = %s",
                               [(last, updates, alert_id) for alert_id, last, updates in statuses])

    def put_tracker_values(self, values: dict[str, float]) -> None:
        """Create or replace named values of the tracker (feed periods, the last prediction pass)."""
        self.repo.execute_many("INSERT INTO tracker_values (name, value) VALUES (%s, %s) ON CONFLICT (name) "
                               "DO UPDATE SET value = excluded.value", sorted(values.items()))
