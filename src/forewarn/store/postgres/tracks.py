"""PostgreSQL storage of live tracks: accepted positions (columnar chunks), the latest state of each track (with
a PostGIS point), alerts and feed counters. The same methods as :class:`forewarn.store.sqlite.tracks.TrackStore`;
writes join the caller's ``repo.transaction()`` (or run in their own). Units as in :mod:`forewarn.tracks.model`.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from forewarn.store.postgres.repository import PostgresRepository
from forewarn.store.sqlite.tracks import StoredPositions, TrackRecord
from forewarn.tracks.alerts import OPENING_KINDS, TrackAlert
from forewarn.tracks.model import NUMERIC_FIELDS, Position, PositionBatch

_TRACK = ("party_id, track_id, operation_id, source, conforming, t_s, lat_deg, lon_deg, alt_m, gs_mps, track_deg, "
          "vs_mps, callsign, updated_at")
_UPSERT = (f"INSERT INTO tracks ({_TRACK}) VALUES ({', '.join(['%s'] * 14)}) ON CONFLICT(party_id, track_id) DO "
           "UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in _TRACK.split(", ")[2:]))


def _null(value: float) -> float | None:
    """NaN as SQL NULL."""
    return None if value != value else value


def _num(value: float | None) -> float:
    """SQL NULL as NaN."""
    return float("nan") if value is None else value


TRACK_COLUMNS = _TRACK
"""The columns of ``tracks`` that :func:`track_record` reads, in its order."""


def track_record(row: Sequence[Any]) -> TrackRecord:
    """A track state from a row of :data:`TRACK_COLUMNS` (NULL numbers as NaN)."""
    return TrackRecord(row[0], row[2], row[3], row[4],
                       Position(row[1], row[5], row[6], row[7], _num(row[8]), _num(row[9]), _num(row[10]),
                                _num(row[11]), row[12]), row[13])


class PostgresTrackStore:
    """Track tables of the PostgreSQL database (see module docstring)."""

    def __init__(self, repo: PostgresRepository) -> None:
        self.repo = repo

    def add_positions(self, party_id: str, source: str, batch: PositionBatch,
                      flags: Sequence[str | None] | None = None) -> int:
        """Append accepted positions as one columnar chunk, each (party, track, time) once: rows whose key is
        already stored, or repeats an earlier row of the batch, are skipped (``INSERT ... ON CONFLICT DO NOTHING
        RETURNING`` tells which keys are new, so concurrent writers cannot both store one). Returns how many were
        skipped."""
        if not len(batch):
            return 0
        track_ids = batch.track_id.astype(str)
        with self.repo.transaction():
            inserted = self.repo.rows(
                "INSERT INTO track_position_keys (party_id, track_id, t_s) SELECT %s, k.track_id, k.t_s FROM "
                "unnest(%s::text[], %s::float8[]) AS k(track_id, t_s) ON CONFLICT DO NOTHING RETURNING track_id, t_s",
                (party_id, track_ids.tolist(), batch.t_s.tolist()))
            fresh = {(r[0], float(r[1])) for r in inserted}
            new = np.zeros(len(batch), dtype=bool)
            for k, key in enumerate(zip(track_ids.tolist(), batch.t_s.tolist(), strict=True)):
                if key in fresh:
                    new[k] = True
                    fresh.discard(key)  # a repeat within the batch is not new
            if new.any():
                all_flags = np.array(["" if f is None else f for f in (flags or [None] * len(batch))], dtype=str)
                self._add_chunk(party_id, source, batch.take(new), all_flags[new])
        return int(len(batch) - new.sum())

    def stored(self, party_id: str, batch: PositionBatch) -> npt.NDArray[np.bool_]:
        """Which rows of ``batch`` have a (party, track, time) already stored (times compared exactly)."""
        if not len(batch):
            return np.zeros(0, dtype=bool)
        rows = self.repo.rows(
            "SELECT k.n - 1 FROM unnest(%s::text[], %s::float8[]) WITH ORDINALITY AS k(track_id, t_s, n) "
            "WHERE EXISTS (SELECT 1 FROM track_position_keys p WHERE p.party_id = %s AND p.track_id = k.track_id "
            "AND p.t_s = k.t_s)", (batch.track_id.astype(str).tolist(), batch.t_s.tolist(), party_id))
        out = np.zeros(len(batch), dtype=bool)
        out[[int(r[0]) for r in rows]] = True
        return out

    def _add_chunk(self, party_id: str, source: str, batch: PositionBatch, flags: npt.NDArray[np.str_]) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, track_id=batch.track_id.astype(str), callsign=batch.callsign.astype(str), flag=flags,
                 **{name: getattr(batch, name) for name in NUMERIC_FIELDS})
        self.repo.execute("INSERT INTO track_chunks (party_id, source, t_min, t_max, n, data) "
                          "VALUES (%s,%s,%s,%s,%s,%s)",
                          (party_id, source, float(batch.t_s.min()), float(batch.t_s.max()), len(batch),
                           buffer.getvalue()))

    def count_positions(self, party_id: str | None = None) -> int:
        """How many positions are stored (of one party, or all)."""
        sql, params = "SELECT coalesce(sum(n), 0) FROM track_chunks", list[str]()
        if party_id is not None:
            sql, params = sql + " WHERE party_id = %s", [party_id]
        row = self.repo.row(sql, params)
        return int(row[0]) if row else 0

    def positions(self, party_id: str | None = None, t_from: float | None = None, t_to: float | None = None
                  ) -> list[StoredPositions]:
        """Stored positions, chunk by chunk in the order stored, of one party (or all) with times in
        [``t_from``, ``t_to``] (POSIX seconds UTC; rows outside are dropped)."""
        sql, params = "SELECT party_id, source, data FROM track_chunks WHERE true", list[object]()
        for clause, value in (("party_id = %s", party_id), ("t_max >= %s", t_from), ("t_min <= %s", t_to)):
            if value is not None:
                sql += " AND " + clause
                params.append(value)
        out: list[StoredPositions] = []
        for party, source, data in self.repo.rows(sql + " ORDER BY id", params):
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
        self.repo.execute_many(_UPSERT, [
            (r.party_id, p.track_id, r.operation_id, r.source, r.conforming, p.t_s, p.lat_deg, p.lon_deg,
             _null(p.alt_m), _null(p.gs_mps), _null(p.track_deg), _null(p.vs_mps), p.callsign, r.updated_at)
            for r in records for p in (r.last,)])

    def list_tracks(self, party_ids: Iterable[str] | None = None) -> list[TrackRecord]:
        """Stored track states (of some parties, or all), by party then track id."""
        sql, params = f"SELECT {_TRACK} FROM tracks", list[object]()
        if party_ids is not None:
            wanted = list(party_ids)
            if not wanted:
                return []
            sql, params = sql + " WHERE party_id = ANY(%s)", [wanted]
        return [track_record(r) for r in self.repo.rows(sql + " ORDER BY party_id, track_id", params)]

    def add_alerts(self, alerts: Sequence[TrackAlert]) -> None:
        """Store alerts; an opening alert is stored open, a clearing one closes the alert it clears."""
        with self.repo.transaction():
            for alert in alerts:
                self.repo.execute("INSERT INTO track_alerts (id, kind, encounter, at, party_id, track_id, open, doc) "
                               "VALUES (%s,%s,%s,%s,%s,%s,%s,%s::jsonb)",
                               (alert.id, alert.kind, alert.encounter, alert.at, alert.party_id, alert.track_id,
                                alert.kind in OPENING_KINDS, alert.model_dump_json()))
                if alert.clears:
                    self.repo.execute("UPDATE track_alerts SET open = false WHERE id = %s", (alert.clears,))

    def open_alerts(self) -> list[TrackAlert]:
        """Alerts whose encounter is not over yet (restored into the tracker at start)."""
        rows = self.repo.rows("SELECT doc::text FROM track_alerts WHERE open ORDER BY at, id")
        return [TrackAlert.model_validate_json(r[0]) for r in rows]

    def list_alerts(self, party_id: str | None = None, since: datetime | None = None) -> list[TrackAlert]:
        """Stored alerts about one party's tracks (or all), oldest first."""
        sql, params = "SELECT doc::text FROM track_alerts WHERE true", list[object]()
        if party_id is not None:
            sql += " AND party_id = %s"
            params.append(party_id)
        if since is not None:
            sql += " AND at >= %s"
            params.append(since)
        return [TrackAlert.model_validate_json(r[0]) for r in self.repo.rows(sql + " ORDER BY at, id", params)]

    def add_quality(self, source: str, counts: dict[str, int]) -> None:
        """Add to the per-source, per-reason counters of the feed-quality checks."""
        self.repo.execute_many("INSERT INTO feed_quality (source, reason, count) VALUES (%s,%s,%s) ON CONFLICT(source, "
                            "reason) DO UPDATE SET count = feed_quality.count + excluded.count",
                            [(source, reason, n) for reason, n in counts.items() if n])

    def quality(self) -> dict[str, dict[str, int]]:
        """source -> reason -> count of every position checked (``accepted`` included)."""
        out: dict[str, dict[str, int]] = {}
        for source, reason, n in self.repo.rows("SELECT source, reason, count FROM feed_quality"):
            out.setdefault(source, {})[reason] = int(n)
        return out
