"""What every feed parser returns, and the conversion of mapping records (JSON objects, CSV rows) to positions.

Units of :mod:`forewarn.tracks.model`: POSIX seconds UTC, WGS84 degrees, metres, m/s, true degrees. Empty values
become NaN (numbers) or ``""`` (track id, callsign); a value of the wrong kind rejects its record.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple, cast

import numpy as np
import numpy.typing as npt

from forewarn.tracks.model import NUMERIC_FIELDS, FloatArray, PositionBatch
from forewarn.units import FOOT_M, KNOT_MPS

FEET_PER_MINUTE_MPS = FOOT_M / 60.0
"""One foot per minute in metres per second."""

IntArray = npt.NDArray[np.intp]

class ParseReject(NamedTuple):
    """A record that could not be parsed: its 0-based record number (see :class:`FeedResult`) and why."""

    record: int
    reason: str


@dataclass(frozen=True)
class FeedResult:
    """Parsed positions, the record number of each (``row_index``) and the records that could not be parsed.

    Record numbers are 0-based: the element of a JSON array or column dict, otherwise the line number in the
    file minus one (so a CSV header is record 0 and the first data line record 1). ``records`` counts the records
    read (positions and rejects; SBS-1 messages that carry no position are records too).
    """

    batch: PositionBatch
    row_index: IntArray
    rejects: list[ParseReject]
    format: str
    records: int

    @property
    def counts(self) -> dict[str, int]:
        """Records read, positions parsed, records rejected."""
        return {"records": self.records, "positions": len(self.batch), "unparsable": len(self.rejects)}

    @classmethod
    def concat(cls, parts: Sequence[FeedResult], fmt: str) -> FeedResult:
        """One result from consecutive chunks."""
        return cls(PositionBatch.concat([p.batch for p in parts]),
                   np.concatenate([np.zeros(0, dtype=np.intp), *(p.row_index for p in parts)]),
                   [r for p in parts for r in p.rejects], fmt, sum(p.records for p in parts))


class Schema(NamedTuple):
    """Where each Position field comes from in a record, and the factor to SI units."""

    track_id: str
    times: tuple[str, ...]  # the first key with a value wins
    time_scale: float  # numeric time x scale = POSIX seconds
    numbers: tuple[tuple[str, str, float], ...]  # (Position field, record key, factor)
    callsign: str

    def required(self) -> tuple[str, ...]:
        return self.track_id, self.numbers[0][1], self.numbers[1][1]


OWN = Schema("track_id", ("t_s", "time"), 1.0, tuple((f, f, 1.0) for f in NUMERIC_FIELDS[1:]), "callsign")
TRAFFIC = Schema("icao24", ("timestamp",), 1e-3, (
    ("lat_deg", "latitude", 1.0), ("lon_deg", "longitude", 1.0), ("alt_m", "altitude", FOOT_M),
    ("gs_mps", "groundspeed", KNOT_MPS), ("track_deg", "track", 1.0),
    ("vs_mps", "vertical_rate", FEET_PER_MINUTE_MPS)), "callsign")


class BadValue(ValueError):
    pass


def number(value: object) -> float:
    """A float from a JSON/CSV value; None and "" are NaN."""
    if value is None or value == "":
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadValue(f"not a number: {value!r:.40}")
    try:
        return float(value)
    except (ValueError, OverflowError) as exc:
        raise BadValue(f"not a number: {value!r:.40}") from exc


def scaled(factor: float) -> Callable[[object], float]:
    return lambda value: number(value) * factor


def parse_time(value: object, scale: float) -> float:
    """POSIX seconds from a number (x ``scale``) or an ISO 8601 string (UTC when it has no offset)."""
    if isinstance(value, str) and value.strip():
        try:
            return float(value) * scale
        except ValueError:
            pass
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise BadValue(f"not a time: {value!r:.40}") from exc
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    return number(value) * scale


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise BadValue(f"not a text: {value!r:.40}")


def parse_records(records: Sequence[object], index: Sequence[int], schema: Schema, fmt: str,
                   rejects: list[ParseReject], count: int) -> FeedResult:
    """Positions from mapping records (JSON objects, CSV rows); a column is converted at once when it is clean."""
    n = len(records)
    maps: list[Mapping[str, object]] = [r if isinstance(r, dict) else {} for r in records]  # JSON and CSV give dicts
    bad: dict[int, str] = {k: f"not an object: {r!r:.40}" for k, r in enumerate(records) if not isinstance(r, dict)}

    def column(name: str, values: list[object], convert: Callable[[object], float], scale: float) -> FloatArray:
        try:  # fast path: numbers and None (-> NaN); strings that numpy can read are numbers too
            out = np.array(values, dtype=np.float64)
            if out.shape == (n,) and bool not in set(map(type, values)):
                return np.asarray(out * scale, dtype=np.float64)
        except (ValueError, TypeError, OverflowError):
            pass
        out = np.full(n, np.nan)
        for k, v in enumerate(values):
            try:
                out[k] = convert(v)
            except BadValue as exc:
                bad.setdefault(k, f"{name}: {exc}")
        return out

    def texts(key: str) -> npt.NDArray[np.object_]:
        values = [m.get(key) for m in maps]
        out = np.empty(n, dtype=object)
        if set(map(type, values)) <= {str, type(None)}:
            out[:] = ["" if v is None else v.strip() for v in cast(list[str | None], values)]
            return out
        for k, v in enumerate(values):
            try:
                out[k] = _text(v)
            except BadValue as exc:
                bad.setdefault(k, f"{key}: {exc}")
                out[k] = ""
        return out

    times = [m.get(schema.times[0]) for m in maps]
    for other in schema.times[1:]:
        for k, v in enumerate(times):
            if v is None or v == "":
                times[k] = maps[k].get(other)
    cols = {"t_s": column("time", times, lambda v: parse_time(v, schema.time_scale), schema.time_scale)}
    for field, key, factor in schema.numbers:
        cols[field] = column(key, [m.get(key) for m in maps], scaled(factor), factor)
    batch = PositionBatch(track_id=texts(schema.track_id), callsign=texts(schema.callsign), **cols)
    keep = np.ones(n, dtype=bool)
    keep[list(bad)] = False
    rows = np.asarray(index, dtype=np.intp)
    rejects = rejects + [ParseReject(int(rows[k]), bad[k]) for k in sorted(bad)]
    return FeedResult(batch.take(keep), rows[keep], rejects, fmt, count)


# --- input -------------------------------------------------------------------------------------------------------


def empty_result(fmt: str, rejects: list[ParseReject] | None = None, records: int = 0) -> FeedResult:
    """A result with no position (and maybe some rejects)."""
    return FeedResult(PositionBatch.empty(), np.zeros(0, dtype=np.intp), rejects or [], fmt, records)
