"""Keeping readers and forgers from growing the ledger without bound (issue 20): what a read path discloses and
what a forged or replayed signature is refused are recorded, but aggregated per party and period.

* **Disclosures.** A read that releases planning detail to another party writes one ``disclosure`` entry listing
  every operation view it released that this reader was not already recorded as shown in the current period
  (``period_s``, UTC-aligned); a read that releases nothing new writes nothing and is only counted, the counts
  going into the reader's next entry (``repeats``). So 100 reads of the same page write one entry, a reader
  writes at most one entry per period for what it keeps reading, and new entries come only with new content.
* **Rejections.** Refused party signatures are counted per acting party and period: the first
  :data:`REJECTIONS_IN_FULL` of a period are written, then the 10th, 100th, 1000th ... (each with the count so
  far), and the first of the next period carries the previous period's final count. 50 forgeries in a minute
  write 6 entries, 10,000 write 9.

Counts live in this process's memory (several processes each keep their own, so the bounds hold per process);
every distinct view disclosed is written before the read answers."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def period_start(now: datetime, period_s: float) -> datetime:
    """The start (UTC) of the period of length ``period_s`` seconds holding ``now``, periods aligned on the epoch."""
    ts = now.timestamp()
    return datetime.fromtimestamp(ts - ts % period_s, UTC)


def view_digest(view: dict[str, Any]) -> str:
    """A digest of a view as shown (sorted-key JSON, SHA-256 hex)."""
    return hashlib.sha256(json.dumps(view, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class _ReaderPeriod:
    start: datetime
    recorded: set[tuple[str, str]] = field(default_factory=set)
    """(operation id, view digest) written in this period."""
    repeats: dict[str, int] = field(default_factory=dict)
    """Operation id -> views of it released since the reader's last entry and not written (already recorded)."""


@dataclass
class DisclosureTally:
    """Which disclosures to write (see module docstring)."""

    period_s: float = 60.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    """Held by the caller from :meth:`fresh` until the entry is written, so two reads cannot both write it."""
    _readers: dict[str, _ReaderPeriod] = field(default_factory=dict)

    def fresh(self, viewer: str, views: list[tuple[str, dict[str, Any]]], now: datetime,
              ) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, Any]]:
        """Of ``views`` ((operation id, view) released to ``viewer`` at ``now``), those to write, and what to add
        to the entry's body (the period and the repeats counted since the reader's last entry); when none is to
        be written the views are counted as repeats. Call under :attr:`lock`."""
        start = period_start(now, self.period_s)
        state = self._readers.get(viewer)
        carried: dict[str, int] = {}
        if state is None or state.start != start:
            carried = state.repeats if state is not None else {}
            state = self._readers[viewer] = _ReaderPeriod(start)
            state.repeats = dict(carried)
        new: list[tuple[str, dict[str, Any]]] = []
        for op_id, view in views:
            key = (op_id, view_digest(view))
            if key in state.recorded:
                state.repeats[op_id] = state.repeats.get(op_id, 0) + 1
            else:
                state.recorded.add(key)
                new.append((op_id, view))
        if not new:
            return [], {}
        extra = {"period_start": start, "period_s": self.period_s, "repeats": state.repeats}
        state.repeats = {}
        if len(self._readers) > 100_000:  # bounded memory: forget readers of other periods
            self._readers = {k: v for k, v in self._readers.items() if v.start == start}
        return new, extra


@dataclass
class _Count:
    start: datetime
    count: int = 0
    written: int = 0


@dataclass
class RejectionTally:
    """Which refused signatures to write (see module docstring)."""

    period_s: float = 60.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    _counts: dict[str, _Count] = field(default_factory=dict)

    def count(self, party_id: str, now: datetime) -> dict[str, Any] | None:
        """Count a rejection of ``party_id`` at ``now``: what to add to its entry's body when it is to be written
        (the period, the count so far, and the previous period's final count if part of it went unwritten), or
        None when it is only counted."""
        start = period_start(now, self.period_s)
        with self.lock:
            current = self._counts.get(party_id)
            previous = None
            if current is None or current.start != start:
                if current is not None and current.count > current.written:
                    previous = {"period_start": current.start, "rejections": current.count}
                current = self._counts[party_id] = _Count(start)
                if len(self._counts) > 100_000:
                    self._counts = {k: v for k, v in self._counts.items() if v.start == start}
            current.count += 1
            n = current.count
            if n > REJECTIONS_IN_FULL and not _power_of_ten(n):
                return None
            current.written = n
        extra: dict[str, Any] = {"period_start": start, "period_s": self.period_s, "rejections_in_period": n}
        if previous is not None:
            extra["previous_period"] = previous
        return extra


REJECTIONS_IN_FULL = 5
"""Refused signatures of a party written one by one in each period before only the 10th, 100th ... are."""


def _power_of_ten(n: int) -> bool:
    while n >= 10 and n % 10 == 0:
        n //= 10
    return n == 1
