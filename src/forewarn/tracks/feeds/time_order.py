"""Several feed files replayed as one stream in time order, in memory bounded by the batch, not by the files.

:class:`TimeOrderedFeeds` reads each file once as a stream (:func:`~forewarn.tracks.feeds.iter_feed`), cuts the
positions into runs of at most ``run_rows`` rows, sorts each run by time and writes it to a temporary directory
(88 bytes a position: seven float64 columns, interned track id and callsign, file number, sequence number).
:meth:`TimeOrderedFeeds.slices` then merges the sorted runs block by block into consecutive slices of ``step_s``
seconds of feed time. The order is the one a stable sort of all positions by time would give (ties keep the file
order, then the record order); positions without a finite time come last, in one final slice. Memory: one run
while reading, one block per run while merging, the interned track ids and callsigns (one string per distinct
value), and one slice.

Units as in :mod:`forewarn.tracks.model` (POSIX seconds UTC, WGS84 degrees, metres, m/s, degrees).
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from forewarn.tracks.feeds.records import FeedResult, ParseReject
from forewarn.tracks.feeds.sources import iter_feed
from forewarn.tracks.model import NUMERIC_FIELDS, PositionBatch

ROW = np.dtype([*((name, "<f8") for name in NUMERIC_FIELDS), ("key", "<f8"), ("track", "<i4"),
                ("callsign", "<i4"), ("feed", "<i4"), ("pad", "<i4"), ("seq", "<i8")])
"""One position in a run file (``key``: the time, +inf when it is not finite)."""


@dataclass
class FeedSummary:
    """What reading one file gave: its format, records read, positions, positions with a finite time, and the
    records that could not be parsed (the first ``keep_rejects`` of them kept; ``unparsable`` counts them all)."""

    path: Path
    format: str = ""
    records: int = 0
    positions: int = 0
    timed: int = 0
    unparsable: int = 0
    rejects: list[ParseReject] = field(default_factory=list)


class _Interned:
    """Strings as int codes (one entry per distinct value)."""

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}
        self.values: list[str] = []

    def encode(self, items: npt.NDArray[np.object_]) -> npt.NDArray[np.int32]:
        out = np.empty(len(items), dtype=np.int32)
        for k, item in enumerate(items.tolist()):
            code = self.codes.get(item)
            if code is None:
                code = self.codes[item] = len(self.values)
                self.values.append(item)
            out[k] = code
        return out

    def table(self) -> npt.NDArray[np.object_]:
        table = np.empty(len(self.values), dtype=object)
        table[:] = self.values
        return table


class TimeOrderedFeeds:
    """Positions of several feed files, read once and replayed in time order (see the module docstring).

    ``run_rows``: positions per sorted run; ``merge_rows``: positions held by the merge, shared by the runs (at
    least 256 each). Use as a context manager (the run files are deleted on exit). ``read`` raises what
    :func:`~forewarn.tracks.feeds.iter_feed` raises (ValueError, OSError, EOFError, zlib.error) for a file that
    cannot be read; call it before feeding anything, so that a bad file stops the replay before it starts.
    """

    def __init__(self, run_rows: int = 100_000, merge_rows: int = 100_000, keep_rejects: int = 100,
                 directory: str | os.PathLike[str] | None = None) -> None:
        self.run_rows, self.merge_rows, self.keep_rejects = max(1, run_rows), max(1, merge_rows), keep_rejects
        self._dir = tempfile.TemporaryDirectory(prefix="forewarn-replay-", dir=directory)
        self._runs: list[Path] = []
        self._files: list[Path] = []
        self._pending: list[np.ndarray] = []
        self._pending_rows = 0
        self._seq = 0
        self._tracks, self._callsigns = _Interned(), _Interned()
        self.t_min, self.t_max = math.inf, -math.inf
        """Earliest and latest finite times read (POSIX seconds UTC)."""

    def __enter__(self) -> TimeOrderedFeeds:
        return self

    def __exit__(self, *exc: object) -> None:
        self._dir.cleanup()

    def read(self, path: Path, fmt: str | None = None, chunk: int = 10_000) -> FeedSummary:
        """Read one file (format detected when ``fmt`` is None) into sorted runs; what it held."""
        summary = FeedSummary(path)
        feed_no = len(self._files)
        self._files.append(path)
        for part in iter_feed(path, fmt, chunk):
            self._add(part, feed_no, summary)
        self._flush()
        return summary

    def _add(self, part: FeedResult, feed_no: int, summary: FeedSummary) -> None:
        summary.format = part.format
        summary.records += part.records
        summary.unparsable += len(part.rejects)
        summary.rejects.extend(part.rejects[:max(0, self.keep_rejects - len(summary.rejects))])
        n = len(part.batch)
        if not n:
            return
        rows = np.zeros(n, dtype=ROW)
        for name in NUMERIC_FIELDS:
            rows[name] = getattr(part.batch, name)
        finite = np.isfinite(rows["t_s"])
        rows["key"] = np.where(finite, rows["t_s"], np.inf)
        rows["track"] = self._tracks.encode(part.batch.track_id)
        rows["callsign"] = self._callsigns.encode(part.batch.callsign)
        rows["feed"] = feed_no
        rows["seq"] = np.arange(self._seq, self._seq + n)
        self._seq += n
        summary.positions += n
        summary.timed += int(finite.sum())
        if finite.any():
            self.t_min = min(self.t_min, float(rows["t_s"][finite].min()))
            self.t_max = max(self.t_max, float(rows["t_s"][finite].max()))
        self._pending.append(rows)
        self._pending_rows += n
        if self._pending_rows >= self.run_rows:
            self._flush()

    def _flush(self) -> None:
        """Write the pending rows as one run sorted by (time, sequence)."""
        if not self._pending:
            return
        rows = np.concatenate(self._pending)
        self._pending, self._pending_rows = [], 0
        rows = rows[np.argsort(rows["key"], kind="stable")]  # sequence numbers rise within a run
        path = Path(self._dir.name) / f"run-{len(self._runs):06d}.bin"
        rows.tofile(path)
        self._runs.append(path)

    def __len__(self) -> int:
        return self._seq

    def slices(self, step_s: float) -> Iterator[tuple[float, PositionBatch, npt.NDArray[np.int32]]]:
        """Consecutive slices of ``step_s`` seconds of feed time, from the earliest time read: (the latest time
        in the slice, or the latest time read for the final slice of positions without a finite time; the
        positions; the file number of each, in the order files were read)."""
        tracks, callsigns = self._tracks.table(), self._callsigns.table()
        current: list[np.ndarray] = []
        current_slice = -1
        for rows in self._merged():
            slice_of = self._slice_numbers(rows["key"], step_s)
            cuts = np.flatnonzero(np.diff(slice_of)) + 1
            for lo, hi in zip(np.r_[0, cuts].tolist(), np.r_[cuts, len(rows)].tolist(), strict=True):
                number = int(slice_of[lo])
                if number != current_slice and current:
                    yield self._emit(current, tracks, callsigns)
                    current = []
                current_slice = number
                current.append(rows[lo:hi])
        if current:
            yield self._emit(current, tracks, callsigns)

    def _slice_numbers(self, key: npt.NDArray[np.float64], step_s: float) -> npt.NDArray[np.int64]:
        """Slice k holds times in [t_min + k step, t_min + (k + 1) step); times that are not finite: the last."""
        finite = np.isfinite(key)
        t0 = self.t_min if math.isfinite(self.t_min) else 0.0
        k = np.floor((np.where(finite, key, t0) - t0) / step_s)
        k -= (t0 + k * step_s > key) & finite  # rounding at a slice's edges
        k += (t0 + (k + 1) * step_s <= key) & finite
        return np.where(finite, k, 2.0**62).astype(np.int64)

    def _emit(self, parts: list[np.ndarray], tracks: npt.NDArray[np.object_], callsigns: npt.NDArray[np.object_]
              ) -> tuple[float, PositionBatch, npt.NDArray[np.int32]]:
        rows = np.concatenate(parts)
        batch = PositionBatch(track_id=tracks[rows["track"]], callsign=callsigns[rows["callsign"]],
                              **{name: np.ascontiguousarray(rows[name]) for name in NUMERIC_FIELDS})
        finite = np.isfinite(rows["t_s"])
        feed_t = float(rows["t_s"][finite].max()) if finite.any() else self.t_max
        return feed_t, batch, np.ascontiguousarray(rows["feed"])

    def _merged(self) -> Iterator[np.ndarray]:
        """All rows in (time, sequence) order, a few blocks at a time (a k-way merge of the sorted runs)."""
        files: list[BinaryIO] = [open(path, "rb") for path in self._runs]  # noqa: SIM115 - closed below
        try:
            block = max(256, self.merge_rows // max(1, len(files)))  # rows read per run at a time
            blocks = [np.fromfile(f, dtype=ROW, count=block) for f in files]
            while True:
                live = [k for k, b in enumerate(blocks) if len(b)]
                if not live:
                    return
                # everything up to the smallest last (time, seq) of the loaded blocks is in its final order
                mark = min((float(blocks[k]["key"][-1]), int(blocks[k]["seq"][-1])) for k in live)
                out = []
                for k in live:
                    b = blocks[k]
                    ready = (b["key"] < mark[0]) | ((b["key"] == mark[0]) & (b["seq"] <= mark[1]))
                    n = int(ready.sum())  # a prefix: the block is sorted by (key, seq)
                    out.append(b[:n])
                    blocks[k] = b[n:] if n < len(b) else np.fromfile(files[k], dtype=ROW, count=block)
                rows = np.concatenate(out)
                yield rows[np.lexsort((rows["seq"], rows["key"]))]
        finally:
            for f in files:
                f.close()

