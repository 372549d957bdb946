"""SQLite storage of live tracks: accepted positions, the latest state of each track, alerts and feed counters.

Uses the :class:`~forewarn.store.sqlite.repository.SQLiteRepository`'s connection, so its writes join the caller's
``repo.transaction()`` (one transaction per ingest: positions, track states, alerts and their deliveries commit
together or not at all). Units as in :mod:`forewarn.tracks.model`.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from forewarn.store.sqlite.repository import SQLiteRepository
from forewarn.tracks.alerts import OPENING_KINDS, TrackAlert
from forewarn.tracks.model import NUMERIC_FIELDS, Position, PositionBatch


def first_of_each_key(batch: PositionBatch) -> npt.NDArray[np.bool_]:
    """True for the first row of each (track id, time) in ``batch`` (times compared exactly)."""
    keys = np.rec.fromarrays([batch.track_id.astype(str), batch.t_s])
    _, first = np.unique(keys, return_index=True)
    out = np.zeros(len(batch), dtype=bool)
    out[first] = True
    return out


def _null(value: float) -> float | None:
    """NaN as SQL NULL."""
    return None if value != value else value


@dataclass(frozen=True)
class StoredPositions:
    """One stored chunk: the feeding party, the source, the positions and their quality flags ('' = none)."""

    party_id: str
    source: str
    batch: PositionBatch
    flags: npt.NDArray[np.object_]


@dataclass(frozen=True)
class TrackRecord:
    """The stored state of one track: owner, operation, source, conformance (None = not checked), its last
    position (units of :class:`~forewarn.tracks.model.Position`) and when it was written (ISO 8601 UTC)."""

    party_id: str
    operation_id: str | None
    source: str
    conforming: bool | None
    last: Position
    updated_at: str

    @property
    def track_id(self) -> str:
        return self.last.track_id


class TrackStore:
    """Track tables of the SQLite file (see module docstring)."""

    def __init__(self, repo: SQLiteRepository) -> None:
        self.repo = repo

    def add_positions(self, party_id: str, source: str, batch: PositionBatch,
                      flags: Sequence[str | None] | None = None) -> int:
        """Append accepted positions as one columnar chunk (inside the caller's transaction), each (party, track,
        time) once: rows whose key is already stored, or repeats an earlier row of the batch, are skipped.
        Returns how many were skipped."""
        if not len(batch):
            return 0
        with self.repo.transaction():
            new = first_of_each_key(batch) & ~self.stored(party_id, batch)
            self.repo.execute("INSERT INTO track_position_keys (party_id, track_id, t_s) "
                              "SELECT ?, track_id, t_s FROM temp.fed_keys WHERE true ON CONFLICT DO NOTHING",
                              (party_id,))
            self.repo.execute("DELETE FROM temp.fed_keys")
            if new.any():
                kept = batch.take(new)
                all_flags = np.array(["" if f is None else f for f in (flags or [None] * len(batch))], dtype=str)
                self._add_chunk(party_id, source, kept, all_flags[new])
        return int(len(batch) - new.sum())

    def stored(self, party_id: str, batch: PositionBatch) -> npt.NDArray[np.bool_]:
        """Which rows of ``batch`` have a (party, track, time) already stored (times compared exactly). Leaves the
        keys of the batch in ``temp.fed_keys`` (numbered by row) for :meth:`add_positions`."""
        self.repo.execute("CREATE TEMP TABLE IF NOT EXISTS fed_keys (k INTEGER PRIMARY KEY, track_id TEXT, t_s REAL)")
        self.repo.execute("DELETE FROM temp.fed_keys")
        self.repo.executemany("INSERT INTO temp.fed_keys VALUES (?,?,?)",
                              zip(range(len(batch)), batch.track_id.astype(str).tolist(), batch.t_s.tolist(),
                                  strict=True))
        rows = self.repo.execute(
            "SELECT k FROM temp.fed_keys f WHERE EXISTS (SELECT 1 FROM track_position_keys p WHERE p.party_id = ? "
            "AND p.track_id = f.track_id AND p.t_s = f.t_s)", (party_id,)).fetchall()
        out = np.zeros(len(batch), dtype=bool)
        out[[r[0] for r in rows]] = True
        return out

    def _add_chunk(self, party_id: str, source: str, batch: PositionBatch, flags: npt.NDArray[np.str_]) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, track_id=batch.track_id.astype(str), callsign=batch.callsign.astype(str), flag=flags,
                 **{name: getattr(batch, name) for name in NUMERIC_FIELDS})
        self.repo.execute(
            "INSERT INTO track_chunks (party_id, source, t_min, t_max, n, data) VALUES (?,?,?,?,?,?)",
            (party_id, source, float(batch.t_s.min()), float(batch.t_s.max()), len(batch), buffer.getvalue()))

    def count_positions(self, party_id: str | None = None) -> int:
        """How many positions are stored (of one party, or all)."""
        sql, params = "SELECT coalesce(sum(n), 0) FROM track_chunks", list[str]()
        if party_id is not None:
            sql, params = sql + " WHERE party_id = ?", [party_id]
        return int(self.repo.execute(sql, params).fetchone()[0])

    def positions(self, party_id: str | None = None, t_from: float | None = None, t_to: float | None = None
                  ) -> list[StoredPositions]:
        """Stored positions, chunk by chunk in the order stored, of one party (or all) with times in
        [``t_from``, ``t_to``] (POSIX seconds UTC; rows outside are dropped)."""
        sql, params = "SELECT party_id, source, data FROM track_chunks WHERE 1 = 1", list[object]()
        if party_id is not None:
            sql += " AND party_id = ?"
            params.append(party_id)
        if t_from is not None:
            sql += " AND t_max >= ?"
            params.append(t_from)
        if t_to is not None:
            sql += " AND t_min <= ?"
            params.append(t_to)
        out: list[StoredPositions] = []
        for party, source, data in self.repo.execute(sql + " ORDER BY id", params).fetchall():
            with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
                batch = PositionBatch(track_id=arrays["track_id"].astype(object),
                                      callsign=arrays["callsign"].astype(object),
                                      **{name: arrays[name] for name in NUMERIC_FIELDS})
                flags = arrays["flag"].astype(object)
            keep = np.ones(len(batch), dtype=bool)
            if t_from is not None:
                keep &= batch.t_s >= t_from
            if t_to is not None:
                keep &= batch.t_s <= t_to
            out.append(StoredPositions(party, source, batch.take(keep), flags[keep]))
        return out

    def put_tracks(self, records: Iterable[TrackRecord]) -> None:
        """Create or update track states."""
        self.repo.executemany(
            "INSERT INTO tracks (party_id, track_id, operation_id, source, conforming, t_s, lat_deg, lon_deg, alt_m, "
            "gs_mps, track_deg, vs_mps, callsign, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT(party_id, track_id) DO UPDATE SET operation_id = excluded.operation_id, "
            "source = excluded.source, conforming = excluded.conforming, t_s = excluded.t_s, "
            "lat_deg = excluded.lat_deg, lon_deg = excluded.lon_deg, alt_m = excluded.alt_m, "
            "gs_mps = excluded.gs_mps, track_deg = excluded.track_deg, vs_mps = excluded.vs_mps, "
            "callsign = excluded.callsign, updated_at = excluded.updated_at",
            [(r.party_id, p.track_id, r.operation_id, r.source, None if r.conforming is None else int(r.conforming),
              p.t_s, p.lat_deg, p.lon_deg, _null(p.alt_m), _null(p.gs_mps), _null(p.track_deg), _null(p.vs_mps),
              p.callsign, r.updated_at)
             for r in records for p in (r.last,)])

    def list_tracks(self, party_ids: Iterable[str] | None = None) -> list[TrackRecord]:
        """Stored track states (of some parties, or all), by party then track id."""
        sql = ("SELECT party_id, track_id, operation_id, source, conforming, t_s, lat_deg, lon_deg, alt_m, gs_mps, "
               "track_deg, vs_mps, callsign, updated_at FROM tracks")
        params: tuple[str, ...] = ()
        if party_ids is not None:
            params = tuple(party_ids)
            if not params:
                return []
            sql += f" WHERE party_id IN ({','.join('?' * len(params))})"
        rows = self.repo.execute(sql + " ORDER BY party_id, track_id", params).fetchall()
        nan = float("nan")

        def num(v: float | None) -> float:
            return nan if v is None else v

        return [TrackRecord(r[0], r[2], r[3], None if r[4] is None else bool(r[4]),
                            Position(r[1], r[5], r[6], r[7], num(r[8]), num(r[9]), num(r[10]), num(r[11]), r[12]),
                            r[13])
                for r in rows]

    def add_alerts(self, alerts: Sequence[TrackAlert]) -> None:
        """Store alerts; an opening alert is stored open, a clearing one closes the alert it clears."""
        for alert in alerts:
            opening = alert.kind in OPENING_KINDS
            self.repo.execute(
                "INSERT INTO track_alerts (id, kind, encounter, at, party_id, track_id, open, doc) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (alert.id, alert.kind, alert.encounter, alert.at.isoformat(), alert.party_id, alert.track_id,
                 int(opening), alert.model_dump_json()))
            if alert.clears:
                self.repo.execute("UPDATE track_alerts SET open = 0 WHERE id = ?", (alert.clears,))

    def open_alerts(self) -> list[TrackAlert]:
        """Alerts whose encounter is not over yet (restored into the tracker at start)."""
        rows = self.repo.execute("SELECT doc FROM track_alerts WHERE open = 1 ORDER BY at, id").fetchall()
        return [TrackAlert.model_validate_json(r[0]) for r in rows]

    def list_alerts(self, party_id: str | None = None, since: datetime | None = None) -> list[TrackAlert]:
        """Stored alerts about one party's tracks (or all), oldest first."""
        sql, params = "SELECT doc FROM track_alerts WHERE 1 = 1", []
        if party_id is not None:
            sql += " AND party_id = ?"
            params.append(party_id)
        if since is not None:
            sql += " AND at >= ?"
            params.append(since.isoformat())
        rows = self.repo.execute(sql + " ORDER BY at, id", params).fetchall()
        return [TrackAlert.model_validate_json(r[0]) for r in rows]

    def add_quality(self, source: str, counts: dict[str, int]) -> None:
        """Add to the per-source, per-reason counters of the feed-quality checks."""
        self.repo.executemany(
            "INSERT INTO feed_quality (source, reason, count) VALUES (?,?,?) "
            "ON CONFLICT(source, reason) DO UPDATE SET count = count + excluded.count",
            [(source, reason, n) for reason, n in counts.items() if n])

    def quality(self) -> dict[str, dict[str, int]]:
        """source -> reason -> count of every position checked (``accepted`` included)."""
        out: dict[str, dict[str, int]] = {}
        for source, reason, n in self.repo.execute("SELECT source, reason, count FROM feed_quality"):
            out.setdefault(source, {})[reason] = int(n)
        return out
