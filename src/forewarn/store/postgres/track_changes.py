"""The live-track store of a PostgreSQL database shared by several service processes: the track tables of
:class:`~forewarn.store.postgres.tracks.PostgresTrackStore` plus the reads and writes that keep each process's
tracker a replica of one shared tracker state (:class:`~forewarn.store.repository.SharedTrackState`).

Migration 8 numbers every change of ``tracks``, ``track_alerts``, ``track_encounters`` and ``tracker_values`` with
one sequence (``track_state_seq``, stamped by triggers), in commit order since every write transaction holds the
writer lock. Units as in :mod:`forewarn.tracks.model`; feed times in POSIX seconds UTC.
"""

from __future__ import annotations

from collections.abc import Sequence

from forewarn.store.postgres.connection import Row
from forewarn.store.postgres.tracks import TRACK_COLUMNS, PostgresTrackStore, track_record
from forewarn.store.repository import AlertState, TrackStateChanges
from forewarn.tracks.alerts import TrackAlert

_TABLES = ("tracks", "track_alerts", "track_encounters", "tracker_values")


class SharedPostgresTrackStore(PostgresTrackStore):
    """Track tables and their change numbering (see module docstring)."""

    def track_state_head(self) -> int:
        """The highest change number stored (0 when none)."""
        maxima = ", ".join(f"(SELECT max(seq) FROM {table})" for table in _TABLES)
        row = self.repo.row(f"SELECT greatest({maxima}, 0)")
        return int(row[0]) if row else 0

    def track_changes_since(self, seq: int) -> TrackStateChanges:
        """Every track state, alert, encounter status and value written after change ``seq`` (each in change
        order), and the highest change number read (``seq`` itself when nothing changed). Under the writer lock."""
        tracks = self.repo.rows(f"SELECT {TRACK_COLUMNS}, seq FROM tracks WHERE seq > %s ORDER BY seq", (seq,))
        alerts = self.repo.rows("SELECT doc::text, open, NULL, 0, seq FROM track_alerts WHERE seq > %s ORDER BY seq",
                                (seq,))
        statuses = self.repo.rows("SELECT alert_id, last_seen_s, updates, seq FROM track_encounters WHERE seq > %s "
                                  "ORDER BY seq", (seq,))
        values = self.repo.rows("SELECT name, value, seq FROM tracker_values WHERE seq > %s ORDER BY seq", (seq,))
        head = max([seq] + [int(r[-1]) for rows in (tracks, alerts, statuses, values) for r in rows])
        return _changes(head, tracks, alerts, statuses, values)

    def shared_state(self) -> TrackStateChanges:
        """The whole shared state: every track, the open alerts with their encounters' status, every value;
        ``head`` is read first (a change committed while reading is read again by the next
        :meth:`track_changes_since`, which is harmless)."""
        head = self.track_state_head()
        tracks = self.repo.rows(f"SELECT {TRACK_COLUMNS}, seq FROM tracks ORDER BY party_id, track_id")
        alerts = self.repo.rows("SELECT a.doc::text, a.open, e.last_seen_s, coalesce(e.updates, 0), a.seq "
                                "FROM track_alerts a LEFT JOIN track_encounters e ON e.alert_id = a.id "
                                "WHERE a.open ORDER BY a.at, a.id")
        values = self.repo.rows("SELECT name, value, seq FROM tracker_values ORDER BY name")
        return _changes(head, tracks, alerts, [], values)

    def put_encounter_status(self, statuses: Sequence[tuple[str, float, int]]) -> None:
        """Record when open predicted encounters were last predicted (alert id, feed seconds, passes since)."""
        self.repo.execute_many("INSERT INTO track_encounters (alert_id, last_seen_s, updates) VALUES (%s, %s, %s) "
                               "ON CONFLICT (alert_id) DO UPDATE SET last_seen_s = excluded.last_seen_s, "
                               "updates = excluded.updates", list(statuses))

    def put_tracker_values(self, values: dict[str, float]) -> None:
        """Create or replace named values of the tracker (feed periods, the last prediction pass)."""
        self.repo.execute_many("INSERT INTO tracker_values (name, value) VALUES (%s, %s) ON CONFLICT (name) "
                               "DO UPDATE SET value = excluded.value", sorted(values.items()))


def _changes(head: int, tracks: list[Row], alerts: list[Row], statuses: list[Row],
             values: list[Row]) -> TrackStateChanges:
    """The rows read, as the shared state's changes after which the position is ``head``."""
    return TrackStateChanges(
        head=head, tracks=[track_record(r) for r in tracks],
        alerts=[AlertState(TrackAlert.model_validate_json(r[0]), bool(r[1]), r[2], int(r[3])) for r in alerts],
        statuses=[(str(r[0]), float(r[1]), int(r[2])) for r in statuses],
        values={str(r[0]): float(r[1]) for r in values})
