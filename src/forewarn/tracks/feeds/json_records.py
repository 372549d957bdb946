"""Streaming reader of JSON feeds: a JSON array element by element, JSON lines line by line.

Memory is bounded by the chunk (``chunk`` records) and the longest record (:data:`MAX_RECORD_CHARS`), not by the
file: the text is read in blocks of :data:`BLOCK_CHARS` characters and each array element is decoded by the C
scanner of :mod:`json` (``JSONDecoder.raw_decode``) where it lies in the current block. A JSON array cut short (or
broken) keeps every complete element before the cut and rejects the rest as one record. One exception: a document
that is a single JSON object spread over several lines (a pandas-style column dict, whose records only exist once
every column has been read) is read whole.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator, Mapping
from typing import IO

from forewarn.tracks.feeds.records import FeedResult, ParseReject, Schema, empty_result, parse_records

BLOCK_CHARS = 1 << 20
"""Characters read from the stream at a time."""

MAX_RECORD_CHARS = 1 << 22
"""Longest array element (characters) the reader waits for; a longer one ends the array as a cut would."""

_WS = re.compile(r"[ \t\r\n\ufeff]*")
_SEPARATORS = re.compile(r"[ \t\r\n,\ufeff]*")
_DECODER = json.JSONDecoder()


class _Cut(ValueError):
    """The array cannot be read further (cut short, broken or a record too long)."""


class _Text:
    """The characters of a text stream, read block by block, with a cursor and the count of lines passed."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.line = 0  # 0-based number of the line the cursor is on

    def more(self) -> bool:
        """Append a block to the buffer (dropping what the cursor passed); False at the end of the stream."""
        if self.eof:
            return False
        block = self.stream.read(BLOCK_CHARS)
        if not block:
            self.eof = True
            return False
        self.buf = self.buf[self.pos:] + block
        self.pos = 0
        return True

    def skip(self, pattern: re.Pattern[str] = _WS) -> str:
        """Move past the characters ``pattern`` matches; the next character, or "" at the end."""
        while True:
            end = pattern.match(self.buf, self.pos).end()  # type: ignore[union-attr]  # * always matches
            self.line += self.buf.count("\n", self.pos, end)
            self.pos = end
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.more():
                return ""

    def value(self) -> object:
        """Decode the JSON value at the cursor, reading more blocks while it is incomplete."""
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
                if end < len(self.buf) or self.eof:  # a number at the end of the buffer may go on
                    self.line += self.buf.count("\n", self.pos, end)
                    self.pos = end
                    return value
            except ValueError as exc:
                if self.eof:
                    raise _Cut(str(exc)) from exc
                if len(self.buf) - self.pos > MAX_RECORD_CHARS:
                    raise _Cut(f"a record longer than {MAX_RECORD_CHARS} characters") from exc
            self.more()

    def lines(self) -> Iterator[tuple[int, str]]:
        """The remaining lines (with their newlines) and their 0-based numbers."""
        while True:
            cut = self.buf.find("\n", self.pos)
            if cut < 0 and self.more():
                continue
            end = len(self.buf) if cut < 0 else cut + 1
            if end == self.pos:
                return
            line, number = self.buf[self.pos:end], self.line
            self.pos, self.line = end, self.line + 1
            yield number, line


def column_dict_records(doc: Mapping[str, object]) -> list[object] | None:
    """Records from a pandas-style column dict ``{column: {row: value}}``, or None if ``doc`` is not one."""
    columns = [v for v in doc.values()]
    if not columns or not all(isinstance(v, Mapping) for v in columns):
        return None
    maps: list[Mapping[str, object]] = [v for v in columns if isinstance(v, Mapping)]
    rows = list(maps[0].keys())
    for m in maps[1:]:
        rows.extend(k for k in m if k not in maps[0])
    return [{name: col.get(row) for name, col in zip(doc.keys(), maps, strict=True)} for row in rows]


def iter_json(stream: IO[str], schema: Schema, fmt: str, chunk: int) -> Iterator[FeedResult]:
    """Parse a JSON array, JSON lines or a JSON document (column dict, one object) ``chunk`` records at a time."""
    text = _Text(stream)
    first = text.skip()
    if not first:
        yield empty_result(fmt)
    elif first == "[":
        yield from _array(text, schema, fmt, chunk)
    else:
        yield from _lines_or_document(text, schema, fmt, chunk)


def _array(text: _Text, schema: Schema, fmt: str, chunk: int) -> Iterator[FeedResult]:
    """Elements of the array at the cursor; a cut or trailing text rejects one last record."""
    text.pos += 1
    records: list[object] = []
    start = n = 0
    reject: list[ParseReject] = []
    while True:
        c = text.skip(_SEPARATORS)
        if c == "]":
            text.pos += 1
            if text.skip():
                reject = [ParseReject(n, f"invalid JSON array after record {n}: unexpected text after the closing ]")]
            break
        if not c:
            reject = [ParseReject(n, f"invalid JSON array after record {n}: the text ends before the closing ]")]
            break
        try:
            records.append(text.value())
        except _Cut as exc:
            reject = [ParseReject(n, f"invalid JSON array after record {n}: {exc}")]
            break
        n += 1
        if len(records) >= chunk:
            yield parse_records(records, range(start, n), schema, fmt, [], len(records))
            records, start = [], n
    if records or reject or not n:
        yield parse_records(records, range(start, n), schema, fmt, reject, len(records) + len(reject))


def _lines_or_document(text: _Text, schema: Schema, fmt: str, chunk: int
                       ) -> Iterator[FeedResult]:
    """JSON lines (every line a record), or one JSON document: a column dict, an object, an array of lines."""
    lines = text.lines()
    first_no, first = next(lines)
    try:
        head: object = json.loads(first)
        parsed = True
    except ValueError:
        head, parsed = None, False
    if isinstance(head, Mapping) and column_dict_records(head) is None:  # JSON lines: stream them
        yield from _json_lines(first_no, first, lines, schema, fmt, chunk)
        return
    if parsed and text.skip():  # several JSON values, one per line
        yield from _json_lines(first_no, first, text.lines(), schema, fmt, chunk)
        return
    doc = head
    if not parsed:
        rest = "".join(line for _, line in lines)  # an object over several lines: read whole
        try:
            doc = json.loads(first + rest)
        except ValueError:
            rest_lines = ((first_no + 1 + k, line) for k, line in enumerate(io.StringIO(rest, newline="")))
            yield from _json_lines(first_no, first, rest_lines, schema, fmt, chunk)
            return
    records = doc if isinstance(doc, list) else (column_dict_records(doc) if isinstance(doc, Mapping) else None)
    if records is None:
        records = [doc]
    for start in range(0, max(len(records), 1), chunk):
        part = records[start:start + chunk]
        yield parse_records(part, range(start, start + len(part)), schema, fmt, [], len(part))


def _json_lines(first_no: int, first: str, rest: Iterator[tuple[int, str]], schema: Schema, fmt: str,
                chunk: int) -> Iterator[FeedResult]:
    """One record per non-blank line, numbered by its line; a line that is not JSON is rejected."""
    records: list[object] = []
    index: list[int] = []
    rejects: list[ParseReject] = []
    count = chunks = 0
    for no, line in _chain(first_no, first, rest):
        if not line.strip():
            continue
        count += 1
        try:
            records.append(json.loads(line))
            index.append(no)
        except ValueError as exc:
            rejects.append(ParseReject(no, f"invalid JSON: {exc}"))
        if count >= chunk:
            yield parse_records(records, index, schema, fmt, rejects, count)
            records, index, rejects, count, chunks = [], [], [], 0, chunks + 1
    if count or not chunks:
        yield parse_records(records, index, schema, fmt, rejects, count)


def _chain(first_no: int, first: str, rest: Iterator[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    yield first_no, first
    yield from rest
