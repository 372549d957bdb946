"""Opening feeds: files and in-memory bytes (gzip or not, decompressed as a stream), format detection, and the
dispatch to the parser of each format. See :mod:`forewarn.tracks.feeds` for the formats and their units.
"""

from __future__ import annotations

import gzip
import io
import os
import zlib
from collections.abc import Iterator, Sequence
from typing import IO, cast

from forewarn.tracks.feeds.json_records import iter_json
from forewarn.tracks.feeds.line_formats import SBS_KINDS, iter_csv, iter_sbs
from forewarn.tracks.feeds.records import OWN, TRAFFIC, FeedResult, ParseReject, empty_result

FORMATS = ("json", "traffic", "csv", "sbs")
"""Feed formats understood by :func:`read_feed` (see :mod:`forewarn.tracks.feeds`)."""

_GZIP_MAGIC = b"\x1f\x8b"
_HEAD_BYTES = 65_536
_GZIP_ERRORS = (OSError, EOFError, zlib.error)


class TooManyRecords(ValueError):
    """A feed holds more records than the caller allows (raised as soon as one more is read)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} records in one batch; split it")
        self.limit = limit


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


def open_text(path: str | os.PathLike[str]) -> IO[str]:
    with open(path, "rb") as raw:
        gz = raw.read(2) == _GZIP_MAGIC
    if gz:
        return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="")
    return open(path, encoding="utf-8", errors="replace", newline="")



def iter_feed(path: str | os.PathLike[str], fmt: str | None = None, chunk: int = 10_000) -> Iterator[FeedResult]:
    """Parse a feed file ``chunk`` records at a time (format detected when ``fmt`` is None), streaming: memory is
    bounded by the chunk, not by the file (see :mod:`forewarn.tracks.feeds.json_records` for the one exception).

    Raises ValueError for an unknown or undetectable format and OSError (EOFError, zlib.error for a corrupt
    gzip file) when the file cannot be read, possibly after some chunks; bad records never raise, they become
    :class:`ParseReject` entries.
    """
    fmt = fmt or detect_format(path)
    with open_text(path) as stream:
        yield from iter_text(stream, fmt, chunk)


def read_feed(path: str | os.PathLike[str], fmt: str | None = None) -> FeedResult:
    """Parse a whole feed file (see :func:`iter_feed`)."""
    fmt = fmt or detect_format(path)
    return FeedResult.concat(list(iter_feed(path, fmt, chunk=100_000)), fmt)


def parse_bytes(data: bytes, fmt: str | None = None, max_records: int | None = None) -> FeedResult:
    """Parse a feed held in memory (gzip or not, decompressed as a stream), e.g. a request body.

    A corrupt gzip body gives one reject and no position. With ``max_records``, raises :class:`TooManyRecords`
    as soon as the body is seen to hold more records (so the work done is bounded by the limit, whatever the
    body's size or compression ratio).
    """
    fmt = fmt or detect_format(data)
    raw: IO[bytes] = io.BytesIO(data)
    if data.startswith(_GZIP_MAGIC):
        raw = cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb"))
    text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
    chunk = 100_000 if max_records is None else max(1, min(100_000, max_records + 1))
    try:
        parts = list(iter_text(text, fmt, chunk, max_records))
    except _GZIP_ERRORS:
        return empty_result(fmt, [ParseReject(0, "corrupt gzip data")], 1)
    return FeedResult.concat(parts, fmt)


def parse_own_json(body: bytes, max_records: int | None = None) -> FeedResult:
    """Forewarn JSON (array, lines or column dict) from bytes: the request body of the positions API."""
    return parse_bytes(body, "json", max_records)


def iter_text(lines: IO[str] | Sequence[str], fmt: str, chunk: int = 10_000, max_records: int | None = None
              ) -> Iterator[FeedResult]:
    """Parse text (a text stream or a list of lines with their newlines) in the given format, ``chunk`` records at
    a time; :class:`TooManyRecords` once more than ``max_records`` records have been read."""
    chunk = max(1, int(chunk))
    stream = io.StringIO("".join(lines), newline="") if isinstance(lines, Sequence) else lines
    if fmt == "sbs":
        parts = iter_sbs(stream, chunk)
    elif fmt == "csv":
        parts = iter_csv(stream, chunk)
    elif fmt in ("json", "traffic"):
        parts = iter_json(stream, OWN if fmt == "json" else TRAFFIC, fmt, chunk)
    else:
        raise ValueError(f"unknown feed format {fmt!r}; choose from {', '.join(FORMATS)}")
    seen = 0
    for part in parts:
        seen += part.records
        if max_records is not None and seen > max_records:
            raise TooManyRecords(max_records)
        yield part
