"""Text line formats, read line by line (memory bounded by the chunk): CSV with a header, SBS-1 BaseStation.

See :mod:`forewarn.tracks.feeds` for the columns and fields of each format and their units.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import IO

import numpy as np

from forewarn.tracks.feeds.records import (
    FEET_PER_MINUTE_MPS,
    OWN,
    TRAFFIC,
    BadValue,
    FeedResult,
    ParseReject,
    empty_result,
    number,
    parse_records,
)
from forewarn.tracks.model import NUMERIC_FIELDS, PositionBatch
from forewarn.units import FOOT_M, KNOT_MPS

CSV_HEADER = "track_id,time,lat_deg,lon_deg,alt_m,gs_mps,track_deg,vs_mps,callsign"
"""The documented header of Forewarn CSV feeds."""

SBS_KINDS = ("MSG", "SEL", "ID", "AIR", "STA", "CLK")
"""First fields of SBS-1 lines (only MSG carries data used here)."""



# --- CSV ----------------------------------------------------------------------------------------------------------


def iter_csv(lines: IO[str] | Sequence[str], chunk: int) -> Iterator[FeedResult]:
    reader = csv.reader(lines)
    header: list[str] = []
    for row in reader:
        if any(cell.strip() for cell in row):
            header = [cell.strip().lstrip("\ufeff") for cell in row]
            break
    head_no = reader.line_num - 1
    if not header:
        yield empty_result("csv")
        return
    schema = TRAFFIC if "icao24" in header else OWN
    times = [t for t in schema.times if t in header]
    missing = [c for c in schema.required() if c not in header] + ([] if times else [schema.times[-1]])
    if missing:
        reason = f"CSV header lacks {', '.join(missing)}; expected {CSV_HEADER}"
        yield empty_result("csv", [ParseReject(head_no, reason)], 1)
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
                yield parse_records(records, index, schema, "csv", rejects, count)
                records, index, rejects, count, chunks = [], [], [], 0, chunks + 1
    except csv.Error as exc:  # e.g. a NUL byte or an unterminated quote at the end of the file
        count += 1
        rejects.append(ParseReject(reader.line_num - 1, f"unreadable CSV: {exc}"))
    if count or not chunks:
        yield parse_records(records, index, schema, "csv", rejects, count)


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
        raise BadValue(f"bad date/time {date!r} {clock!r}") from exc


class _Aircraft:
    """The last known callsign and values (SI units) of one SBS-1 aircraft."""

    __slots__ = ("alt_m", "callsign", "gs_mps", "track_deg", "vs_mps")

    def __init__(self) -> None:
        self.callsign = ""
        self.alt_m = self.gs_mps = self.track_deg = self.vs_mps = math.nan


def iter_sbs(lines: IO[str] | Sequence[str], chunk: int) -> Iterator[FeedResult]:
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
                raise BadValue(f"truncated SBS-1 line ({len(parts)} fields)")
            kind = int(parts[1]) if parts[1].strip().isdigit() else 0
            ident = parts[4].strip().lower()
            if not 1 <= kind <= 8 or not ident:
                raise BadValue(f"bad transmission type or hex ident: {parts[1]!r}, {parts[4]!r}")
            t = _sbs_time(parts[6], parts[7]) if parts[6].strip() else _sbs_time(parts[8], parts[9])
            alt, gs, trk, lat, lon, vs = (number(v.strip()) for v in parts[11:17])
        except BadValue as exc:
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
        return empty_result("sbs", rejects, count)
    cols = list(zip(*rows, strict=True))
    batch = PositionBatch(track_id=np.array(cols[0], dtype=object), callsign=np.array(cols[8], dtype=object),
                          **{name: np.array(cols[k + 1], dtype=np.float64) for k, name in enumerate(NUMERIC_FIELDS)})
    return FeedResult(batch, np.array(index, dtype=np.intp), rejects, "sbs", count)
