"""Track feed parsers: Forewarn JSON, ``traffic`` state vectors, CSV and SBS-1 BaseStation text -> PositionBatch.

Every parser returns :class:`FeedResult`: the positions as a :class:`~forewarn.tracks.model.PositionBatch` (units
of :mod:`forewarn.tracks.model`: POSIX seconds UTC, WGS84 degrees, metres, m/s, true degrees), the record number
of each position, and a :class:`ParseReject` for every record that cannot be parsed at all (a string in a number
field, a truncated line, a bad date). Records that parse but carry impossible values (a NaN position, latitude 200,
an infinite altitude) are *not* rejected here: that is the job of :mod:`forewarn.tracks.quality`. Empty values
become NaN (numbers) or ``""`` (track id, callsign). Gzip input (``.gz``, detected by its magic bytes) is
decompressed transparently.

Formats (:data:`FORMATS`):

``json``
    Forewarn's own JSON: objects with the fields of :class:`~forewarn.tracks.model.Position` (``track_id``,
    ``t_s`` POSIX seconds or ``time`` ISO 8601 (UTC; a time without an offset is read as UTC), ``lat_deg``,
    ``lon_deg``, ``alt_m``, ``gs_mps``, ``track_deg``, ``vs_mps``, ``callsign``), as a JSON array, JSON lines or
    a pandas-style column dict (``{"track_id": {"0": ...}, ...}``).
``traffic``
    State vectors of the ``traffic`` package, records or pandas column dict: ``timestamp`` (milliseconds since
    the epoch UTC, or an ISO 8601 string), ``icao24`` (the track id), ``callsign``, ``latitude``, ``longitude``,
    ``altitude`` (feet, barometric: converted to metres, datum unchanged), ``groundspeed`` (knots), ``track``
    (degrees), ``vertical_rate`` (feet per minute).
``csv``
    A header line, then one position per line: the own columns :data:`CSV_HEADER`
    (``track_id,time,lat_deg,lon_deg,alt_m,gs_mps,track_deg,vs_mps,callsign``; ``time`` is ISO 8601 UTC or POSIX
    seconds, ``t_s`` may replace ``time``; only track_id, time, lat_deg and lon_deg are required, in any order),
    or the ``traffic`` column names above (then the traffic units apply; needs icao24, timestamp, latitude,
    longitude).
``sbs``
    SBS-1 BaseStation text (dump1090 port 30003), e.g.
    ``MSG,3,1,1,4CA2D6,1,2015/11/17,12:00:00.000,2015/11/17,12:00:00.000,,37000,,,51.47,-0.45,,,0,0,0,0``.
    Fields (0-based): 1 transmission type 1-8, 4 hex ident (the track id, lower-cased), 6/7 date and time the
    message was generated, **read as UTC** (the logged date/time 8/9 when they are empty), 10 callsign,
    11 altitude (feet), 12 ground speed (knots), 13 track (degrees), 14/15 latitude/longitude, 16 vertical rate
    (feet per minute). Every MSG updates the last known callsign, altitude and velocity of its aircraft; a
    position is emitted when a MSG,2 or MSG,3 carries latitude and longitude, with the last known values of the
    other fields (kept without ageing). SEL, ID, AIR, STA and CLK lines are skipped.

Streaming: :func:`iter_feed` reads JSON lines, CSV and SBS-1 line by line, ``chunk`` records at a time; a JSON
array or column dict is parsed whole by :mod:`json` (it cannot stream them), then cut into chunks.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import os
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, NamedTuple, cast

import numpy as np
import numpy.typing as npt

from forewarn.tracks.model import NUMERIC_FIELDS, FloatArray, PositionBatch
from forewarn.units import FOOT_M, KNOT_MPS

FEET_PER_MINUTE_MPS = FOOT_M / 60.0
"""One foot per minute in metres per second."""

FORMATS = ("json", "traffic", "csv", "sbs")
"""Feed formats understood by :func:`read_feed` (see the module docstring)."""

CSV_HEADER = "track_id,time,lat_deg,lon_deg,alt_m,gs_mps,track_deg,vs_mps,callsign"
"""The documented header of Forewarn CSV feeds."""

SBS_KINDS = ("MSG", "SEL", "ID", "AIR", "STA", "CLK")
"""First fields of SBS-1 lines (only MSG carries data used here)."""

IntArray = npt.NDArray[np.intp]
_GZIP_MAGIC = b"\x1f\x8b"
_HEAD_BYTES = 65_536


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


class _Schema(NamedTuple):
    """Where each Position field comes from in a record, and the factor to SI units."""

    track_id: str
    times: tuple[str, ...]  # the first key with a value wins
    time_scale: float  # numeric time x scale = POSIX seconds
    numbers: tuple[tuple[str, str, float], ...]  # (Position field, record key, factor)
    callsign: str

    def required(self) -> tuple[str, ...]:
        return self.track_id, self.numbers[0][1], self.numbers[1][1]


OWN = _Schema("track_id", ("t_s", "time"), 1.0, tuple((f, f, 1.0) for f in NUMERIC_FIELDS[1:]), "callsign")
TRAFFIC = _Schema("icao24", ("timestamp",), 1e-3, (
    ("lat_deg", "latitude", 1.0), ("lon_deg", "longitude", 1.0), ("alt_m", "altitude", FOOT_M),
    ("gs_mps", "groundspeed", KNOT_MPS), ("track_deg", "track", 1.0),
    ("vs_mps", "vertical_rate", FEET_PER_MINUTE_MPS)), "callsign")


class _BadValue(ValueError):
    pass


def _number(value: object) -> float:
    """A float from a JSON/CSV value; None and "" are NaN."""
    if value is None or value == "":
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _BadValue(f"not a number: {value!r:.40}")
    try:
        return float(value)
    except (ValueError, OverflowError) as exc:
        raise _BadValue(f"not a number: {value!r:.40}") from exc


def _scaled(factor: float) -> Callable[[object], float]:
    return lambda value: _number(value) * factor


def _time(value: object, scale: float) -> float:
    """POSIX seconds from a number (x ``scale``) or an ISO 8601 string (UTC when it has no offset)."""
    if isinstance(value, str) and value.strip():
        try:
            return float(value) * scale
        except ValueError:
            pass
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise _BadValue(f"not a time: {value!r:.40}") from exc
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    return _number(value) * scale


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise _BadValue(f"not a text: {value!r:.40}")


def _parse_records(records: Sequence[object], index: Sequence[int], schema: _Schema, fmt: str,
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
            except _BadValue as exc:
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
            except _BadValue as exc:
                bad.setdefault(k, f"{key}: {exc}")
                out[k] = ""
        return out

    times = [m.get(schema.times[0]) for m in maps]
    for other in schema.times[1:]:
        for k, v in enumerate(times):
            if v is None or v == "":
                times[k] = maps[k].get(other)
    cols = {"t_s": column("time", times, lambda v: _time(v, schema.time_scale), schema.time_scale)}
    for field, key, factor in schema.numbers:
        cols[field] = column(key, [m.get(key) for m in maps], _scaled(factor), factor)
    batch = PositionBatch(track_id=texts(schema.track_id), callsign=texts(schema.callsign), **cols)
    keep = np.ones(n, dtype=bool)
    keep[list(bad)] = False
    rows = np.asarray(index, dtype=np.intp)
    rejects = rejects + [ParseReject(int(rows[k]), bad[k]) for k in sorted(bad)]
    return FeedResult(batch.take(keep), rows[keep], rejects, fmt, count)


# --- input -------------------------------------------------------------------------------------------------------


def _head(path_or_first_bytes: str | os.PathLike[str] | bytes) -> bytes:
    if isinstance(path_or_first_bytes, bytes):
        data = path_or_first_bytes[:_HEAD_BYTES]
    else:
        with open(path_or_first_bytes, "rb") as raw:
            data = raw.read(_HEAD_BYTES)
    if data.startswith(_GZIP_MAGIC):
        try:
            data = zlib.decompressobj(wbits=31).decompress(data, _HEAD_BYTES)
        except zlib.error:
            return b""
    return data


def detect_format(path_or_first_bytes: str | os.PathLike[str] | bytes) -> str:
    """The format (one of :data:`FORMATS`) of a file, or of its first bytes (gzip or not).

    SBS-1 when the first line starts with an SBS message kind; JSON when the text starts with ``[`` or ``{``
    (``traffic`` if the first 64 KiB name ``icao24`` or ``timestamp`` but not ``track_id``); CSV when the first
    line has a comma. An empty input is ``json`` (it parses to nothing). Raises ValueError otherwise.
    """
    text = _head(path_or_first_bytes).decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    if not text:
        return "json"
    first = text.split("\n", 1)[0]
    if first.split(",", 1)[0].strip() in SBS_KINDS and "," in first:
        return "sbs"
    if text[0] in "[{":
        if '"track_id"' not in text and ('"icao24"' in text or '"timestamp"' in text):
            return "traffic"
        return "json"
    if "," in first:
        return "csv"
    raise ValueError(f"unrecognised feed format (starts with {first[:40]!r})")


def _open_text(path: str | os.PathLike[str]) -> IO[str]:
    with open(path, "rb") as raw:
        gz = raw.read(2) == _GZIP_MAGIC
    if gz:
        return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="")
    return open(path, encoding="utf-8", errors="replace", newline="")


def iter_feed(path: str | os.PathLike[str], fmt: str | None = None, chunk: int = 10_000) -> Iterator[FeedResult]:
    """Parse a feed file ``chunk`` records at a time (format detected when ``fmt`` is None).

    Raises ValueError for an unknown or undetectable format and OSError when the file cannot be read; bad
    records never raise, they become :class:`ParseReject` entries.
    """
    fmt = fmt or detect_format(path)
    with _open_text(path) as stream:
        yield from iter_text(stream, fmt, chunk)


def read_feed(path: str | os.PathLike[str], fmt: str | None = None) -> FeedResult:
    """Parse a whole feed file (see :func:`iter_feed`)."""
    fmt = fmt or detect_format(path)
    return FeedResult.concat(list(iter_feed(path, fmt, chunk=100_000)), fmt)


def parse_bytes(data: bytes, fmt: str | None = None) -> FeedResult:
    """Parse a feed held in memory (gzip or not), e.g. a request body."""
    if data.startswith(_GZIP_MAGIC):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            return FeedResult(PositionBatch.empty(), np.zeros(0, dtype=np.intp),
                              [ParseReject(0, "corrupt gzip data")], fmt or "json", 1)
    fmt = fmt or detect_format(data)
    text = io.StringIO(data.decode("utf-8", errors="replace"), newline="")
    return FeedResult.concat(list(iter_text(text, fmt, chunk=100_000)), fmt)


def parse_own_json(body: bytes) -> FeedResult:
    """Forewarn JSON (array, lines or column dict) from bytes: the request body of the positions API."""
    return parse_bytes(body, "json")


def iter_text(lines: IO[str] | Sequence[str], fmt: str, chunk: int = 10_000) -> Iterator[FeedResult]:
    """Parse text lines (a text stream or a list of lines with their newlines) in the given format."""
    chunk = max(1, int(chunk))
    if fmt == "sbs":
        yield from _iter_sbs(lines, chunk)
    elif fmt == "csv":
        yield from _iter_csv(lines, chunk)
    elif fmt in ("json", "traffic"):
        yield from _iter_json(lines, OWN if fmt == "json" else TRAFFIC, fmt, chunk)
    else:
        raise ValueError(f"unknown feed format {fmt!r}; choose from {', '.join(FORMATS)}")


# --- JSON ---------------------------------------------------------------------------------------------------------


def _column_dict_records(doc: Mapping[str, object]) -> list[object] | None:
    """Records from a pandas-style column dict ``{column: {row: value}}``, or None if ``doc`` is not one."""
    columns = [v for v in doc.values()]
    if not columns or not all(isinstance(v, Mapping) for v in columns):
        return None
    maps: list[Mapping[str, object]] = [v for v in columns if isinstance(v, Mapping)]
    rows = list(maps[0].keys())
    for m in maps[1:]:
        rows.extend(k for k in m if k not in maps[0])
    return [{name: col.get(row) for name, col in zip(doc.keys(), maps, strict=True)} for row in rows]


def _iter_json(lines: IO[str] | Sequence[str], schema: _Schema, fmt: str, chunk: int) -> Iterator[FeedResult]:
    it = iter(lines)
    first, lineno = "", -1
    for lineno, line in enumerate(it):  # noqa: B007 - lineno is used after the loop
        if line.strip():
            first = line
            break
    if not first:
        yield FeedResult(PositionBatch.empty(), np.zeros(0, dtype=np.intp), [], fmt, 0)
        return
    try:
        head: object = json.loads(first)
        parsed = True
    except ValueError:
        head, parsed = None, False
    if isinstance(head, Mapping) and _column_dict_records(head) is None:  # JSON lines: stream them
        yield from _json_lines(first, lineno, it, schema, fmt, chunk)
        return
    rest = "".join(it)
    if parsed and rest.strip():  # several JSON values, one per line
        yield from _json_lines(first, lineno, iter(io.StringIO(rest, newline="")), schema, fmt, chunk)
        return
    doc = head
    if not parsed:
        try:
            doc = json.loads(first + rest)
        except ValueError as exc:
            if first.lstrip().startswith("["):
                kept, cut = _array_prefix(first + rest)
                rejects = [ParseReject(len(kept), f"invalid JSON array after record {len(kept)}: {cut or exc}")]
                yield _parse_records(kept, range(len(kept)), schema, fmt, rejects, len(kept) + 1)
            else:
                lines_ = iter(io.StringIO(rest, newline=""))
                yield from _json_lines(first, lineno, lines_, schema, fmt, chunk)
            return
    records = doc if isinstance(doc, list) else (_column_dict_records(doc) if isinstance(doc, Mapping) else None)
    if records is None:
        records = [doc]
    for start in range(0, max(len(records), 1), chunk):
        part = records[start:start + chunk]
        yield _parse_records(part, range(start, start + len(part)), schema, fmt, [], len(part))


def _array_prefix(text: str) -> tuple[list[object], str]:
    """The complete elements at the start of a JSON array cut short (or broken) somewhere, and why it stops."""
    decoder = json.JSONDecoder()
    k = text.index("[") + 1
    records: list[object] = []
    while True:
        while k < len(text) and text[k] in " \t\r\n,":
            k += 1
        if k >= len(text):
            return records, "the text ends before the closing ]"
        if text[k] == "]":
            return records, f"unexpected text after the closing ] at character {k}"
        try:
            value, k = decoder.raw_decode(text, k)
        except ValueError as exc:
            return records, str(exc)
        records.append(value)


def _json_lines(first: str, first_no: int, rest: Iterator[str], schema: _Schema, fmt: str,
                chunk: int) -> Iterator[FeedResult]:
    records: list[object] = []
    index: list[int] = []
    rejects: list[ParseReject] = []
    count = chunks = 0
    lines = ((first_no, first), *((first_no + 1 + k, line) for k, line in enumerate(rest)))
    for no, line in lines:
        if not line.strip():
            continue
        count += 1
        try:
            records.append(json.loads(line))
            index.append(no)
        except ValueError as exc:
            rejects.append(ParseReject(no, f"invalid JSON: {exc}"))
        if count >= chunk:
            yield _parse_records(records, index, schema, fmt, rejects, count)
            records, index, rejects, count, chunks = [], [], [], 0, chunks + 1
    if count or not chunks:
        yield _parse_records(records, index, schema, fmt, rejects, count)


# --- CSV ----------------------------------------------------------------------------------------------------------


def _iter_csv(lines: IO[str] | Sequence[str], chunk: int) -> Iterator[FeedResult]:
    reader = csv.reader(lines)
    header: list[str] = []
    for row in reader:
        if any(cell.strip() for cell in row):
            header = [cell.strip().lstrip("\ufeff") for cell in row]
            break
    head_no = reader.line_num - 1
    if not header:
        yield FeedResult(PositionBatch.empty(), np.zeros(0, dtype=np.intp), [], "csv", 0)
        return
    schema = TRAFFIC if "icao24" in header else OWN
    times = [t for t in schema.times if t in header]
    missing = [c for c in schema.required() if c not in header] + ([] if times else [schema.times[-1]])
    if missing:
        yield FeedResult(PositionBatch.empty(), np.zeros(0, dtype=np.intp),
                         [ParseReject(head_no, f"CSV header lacks {', '.join(missing)}; expected {CSV_HEADER}")],
                         "csv", 1)
        return
    records: list[object] = []
    index: list[int] = []
    rejects: list[ParseReject] = []
    count = chunks = 0
    try:
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            count += 1
            no = reader.line_num - 1
            if len(row) != len(header):
                rejects.append(ParseReject(no, f"expected {len(header)} fields, got {len(row)}"))
            else:
                records.append({k: (v if v.strip() else None) for k, v in zip(header, row, strict=True)})
                index.append(no)
            if count >= chunk:
                yield _parse_records(records, index, schema, "csv", rejects, count)
                records, index, rejects, count, chunks = [], [], [], 0, chunks + 1
    except csv.Error as exc:  # e.g. a NUL byte or an unterminated quote at the end of the file
        count += 1
        rejects.append(ParseReject(reader.line_num - 1, f"unreadable CSV: {exc}"))
    if count or not chunks:
        yield _parse_records(records, index, schema, "csv", rejects, count)


# --- SBS-1 --------------------------------------------------------------------------------------------------------


def _sbs_time(date: str, clock: str) -> float:
    """POSIX seconds from SBS-1 ``yyyy/mm/dd`` and ``hh:mm:ss.sss``, read as UTC."""
    try:
        year, month, day = (int(x) for x in date.strip().split("/"))
        hh, mm, ss = clock.strip().split(":")
        seconds = float(ss)
        if not 0.0 <= seconds < 61.0:
            raise ValueError(ss)
        return datetime(year, month, day, int(hh), int(mm), tzinfo=UTC).timestamp() + seconds
    except (ValueError, OverflowError) as exc:
        raise _BadValue(f"bad date/time {date!r} {clock!r}") from exc


class _Aircraft:
    """The last known callsign and values (SI units) of one SBS-1 aircraft."""

    __slots__ = ("alt_m", "callsign", "gs_mps", "track_deg", "vs_mps")

    def __init__(self) -> None:
        self.callsign = ""
        self.alt_m = self.gs_mps = self.track_deg = self.vs_mps = math.nan


def _iter_sbs(lines: IO[str] | Sequence[str], chunk: int) -> Iterator[FeedResult]:
    known: dict[str, _Aircraft] = {}
    rows: list[tuple[str, float, float, float, float, float, float, float, str]] = []
    index: list[int] = []
    rejects: list[ParseReject] = []
    count = chunks = 0
    for no, line in enumerate(lines):
        parts = line.strip().split(",")
        if parts[0] != "MSG":
            if parts[0] not in SBS_KINDS and line.strip():
                count += 1
                rejects.append(ParseReject(no, f"not an SBS-1 line: {line.strip()[:40]!r}"))
            continue
        count += 1
        try:
            if len(parts) < 17:
                raise _BadValue(f"truncated SBS-1 line ({len(parts)} fields)")
            kind = int(parts[1]) if parts[1].strip().isdigit() else 0
            ident = parts[4].strip().lower()
            if not 1 <= kind <= 8 or not ident:
                raise _BadValue(f"bad transmission type or hex ident: {parts[1]!r}, {parts[4]!r}")
            t = _sbs_time(parts[6], parts[7]) if parts[6].strip() else _sbs_time(parts[8], parts[9])
            alt, gs, trk, lat, lon, vs = (_number(v.strip()) for v in parts[11:17])
        except _BadValue as exc:
            rejects.append(ParseReject(no, str(exc)))
            continue
        plane = known.setdefault(ident, _Aircraft())
        plane.callsign = parts[10].strip() or plane.callsign
        plane.alt_m = plane.alt_m if math.isnan(alt) else alt * FOOT_M
        plane.gs_mps = plane.gs_mps if math.isnan(gs) else gs * KNOT_MPS
        plane.track_deg = plane.track_deg if math.isnan(trk) else trk
        plane.vs_mps = plane.vs_mps if math.isnan(vs) else vs * FEET_PER_MINUTE_MPS
        if kind in (2, 3) and not (math.isnan(lat) or math.isnan(lon)):
            rows.append((ident, t, lat, lon, plane.alt_m, plane.gs_mps, plane.track_deg, plane.vs_mps,
                         plane.callsign))
            index.append(no)
        if count >= chunk:
            yield _rows_result(rows, index, rejects, count)
            rows, index, rejects, count, chunks = [], [], [], 0, chunks + 1
    if count or not chunks:
        yield _rows_result(rows, index, rejects, count)


def _rows_result(rows: list[tuple[str, float, float, float, float, float, float, float, str]], index: list[int],
                 rejects: list[ParseReject], count: int) -> FeedResult:
    if not rows:
        return FeedResult(PositionBatch.empty(), np.zeros(0, dtype=np.intp), rejects, "sbs", count)
    cols = list(zip(*rows, strict=True))
    batch = PositionBatch(track_id=np.array(cols[0], dtype=object), callsign=np.array(cols[8], dtype=object),
                          **{name: np.array(cols[k + 1], dtype=np.float64) for k, name in enumerate(NUMERIC_FIELDS)})
    return FeedResult(batch, np.array(index, dtype=np.intp), rejects, "sbs", count)
