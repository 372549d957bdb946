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
Streaming: :func:`iter_feed` reads every format ``chunk`` records at a time, memory bounded by the chunk and not by
the file: CSV, SBS-1 and JSON lines line by line, a JSON array element by element
(:mod:`forewarn.tracks.feeds.json_records`), gzip decompressed as a stream. The one exception is a JSON document
that is a single object over several lines (a pandas-style column dict), read whole.

Modules: :mod:`~forewarn.tracks.feeds.records` (the result types, conversion of records to positions),
:mod:`~forewarn.tracks.feeds.json_records`, :mod:`~forewarn.tracks.feeds.line_formats` (CSV, SBS-1),
:mod:`~forewarn.tracks.feeds.sources` (files, bytes, format detection).
"""

from forewarn.tracks.feeds.line_formats import CSV_HEADER, SBS_KINDS
from forewarn.tracks.feeds.records import FEET_PER_MINUTE_MPS, FeedResult, ParseReject
from forewarn.tracks.feeds.sources import (
    FORMATS,
    TooManyRecords,
    detect_format,
    iter_feed,
    iter_text,
    parse_bytes,
    parse_own_json,
    read_feed,
)

__all__ = ["CSV_HEADER", "FEET_PER_MINUTE_MPS", "FORMATS", "SBS_KINDS", "FeedResult", "ParseReject",
           "TooManyRecords", "detect_format", "iter_feed", "iter_text", "parse_bytes", "parse_own_json",
           "read_feed"]
