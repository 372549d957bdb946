"""The vectorised comparisons of the feed-quality screen: each row against the last accepted point before it in
its track (its anchor): time order, duplicates, implied horizontal and vertical speeds, the time a position was
first reported (:mod:`forewarn.tracks.quality`). Metres, metres per second, POSIX seconds UTC.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable
from typing import Any, NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt

from forewarn.tracks.model import FloatArray, StrArray
from forewarn.tracks.quality_verdicts import QualityConfig, haversine_m

IntArray = npt.NDArray[np.intp]
_T = TypeVar("_T", bound=np.generic)
BoolArray = npt.NDArray[np.bool_]


class Rows(NamedTuple):
    """Columns of rows (or of their anchors); ``cs`` is the callsign."""

    t: FloatArray
    lat: FloatArray
    lon: FloatArray
    alt: FloatArray
    gs: FloatArray
    trk: FloatArray
    vs: FloatArray
    cs: StrArray

    @classmethod
    def of(cls, columns: Iterable[npt.NDArray[Any]]) -> Rows:
        """Rows from its eight columns, in field order."""
        return cls._make(columns)

    def at(self, index: IntArray | BoolArray | slice) -> Rows:
        return Rows._make(c[index] for c in self)


def same_value(a: FloatArray, b: FloatArray) -> BoolArray:
    return np.asarray((a == b) | (np.isnan(a) & np.isnan(b)))


def pair_codes(rows: Rows, anchor: Rows, fix_t: FloatArray, has_anchor: BoolArray, max_speed: float,
                noise_m: float, max_climb: float = 300.0, alt_noise_m: float = 60.0) -> npt.NDArray[np.int8]:
    """Codes of :data:`PAIR_REASONS` for each row against its anchor (arrays broadcast). The vertical check:
    ``|alt - anchor alt| - alt_noise_m > max_climb * (t - anchor t)`` (metres, m/s; a missing altitude passes)."""
    same_t = rows.t == anchor.t
    identical = same_t & (rows.cs == anchor.cs)
    for name in ("lat", "lon", "alt", "gs", "trk", "vs"):
        identical &= same_value(getattr(rows, name), getattr(anchor, name))
    dist = haversine_m(anchor.lat, anchor.lon, rows.lat, rows.lon)
    too_fast = dist - noise_m > max_speed * (rows.t - fix_t)
    too_steep = np.abs(rows.alt - anchor.alt) - alt_noise_m > max_climb * (rows.t - anchor.t)
    code = np.select([rows.t < anchor.t, identical, same_t, too_fast, too_steep], [1, 2, 3, 4, 5],
                     0).astype(np.int8)
    return np.asarray(np.where(has_anchor, code, 0), dtype=np.int8)


def shift_within(values: npt.NDArray[_T], first: BoolArray, at_first: npt.NDArray[_T]) -> npt.NDArray[_T]:
    """The previous row's value within a group; ``at_first`` (one per group) for the first row of each group."""
    out = np.empty_like(values)
    out[1:] = values[:-1]
    out[first] = at_first
    return out


def fix_times(rows: Rows, anchor: Rows, fix_anchor: FloatArray, has_anchor: BoolArray,
               first: BoolArray) -> tuple[FloatArray, BoolArray]:
    """Fix time of each row in a chain where every row's anchor is the row before it (or the group's state).

    ``fix_anchor`` (per row) is the fix time of the state, used where a group's first row did not move.
    """
    same_pos = has_anchor & (rows.lat == anchor.lat) & (rows.lon == anchor.lon)
    n = len(rows.t)
    carried = same_pos & ~first
    source = np.maximum.accumulate(np.where(carried, 0, np.arange(n)))
    base = np.where(first & same_pos, fix_anchor, rows.t)
    return np.asarray(base[source], dtype=np.float64), np.asarray(same_pos)


def as_floats(values: npt.NDArray[np.generic]) -> FloatArray:
    """A float column; in a column of objects, None is NaN (missing) and what is not a number becomes +infinity
    (out of range)."""
    try:
        return np.asarray(values, dtype=np.float64).reshape(len(values))
    except (ValueError, TypeError, OverflowError):
        out = np.full(len(values), np.inf)
        for k, v in enumerate(values):
            with contextlib.suppress(ValueError, TypeError, OverflowError):
                out[k] = math.nan if v is None else float(v) if not isinstance(v, str | bytes) else math.inf
        return out


class Runs(NamedTuple):
    """Rejection runs decided in advance, for every row ``f`` failing in the optimistic pass, *if* ``f`` turns out
    to be compared with its optimistic anchor (row f-1 or the state): ``end[f]`` is the first row after ``f``
    that passes against that anchor and after which the optimistic codes hold again (-1: not within
    ``lookahead`` rows, or they would not hold); ``codes[slot[f]]`` are the codes of the rows in between."""

    end: IntArray
    slot: IntArray
    codes: npt.NDArray[np.int8]

    @staticmethod
    def speculate(rows: Rows, anchor: Rows, anchor_fix: FloatArray, fix_t: FloatArray, group: IntArray,
                  failing: BoolArray, cfg: QualityConfig, lookahead: int) -> Runs:
        n = len(failing)
        fs = np.flatnonzero(failing)
        end, slot = np.full(n, -1, dtype=np.intp), np.full(n, -1, dtype=np.intp)
        slot[fs] = np.arange(len(fs))
        codes = np.zeros((len(fs), lookahead), dtype=np.int8)
        pending = np.arange(len(fs))
        for k in range(1, lookahead + 1):
            r = fs[pending] + k
            inside = r < n
            inside[inside] = group[r[inside]] == group[fs[pending[inside]]]
            pending, r = pending[inside], r[inside]
            if not len(pending):
                break
            f = fs[pending]
            c = pair_codes(rows.at(r), anchor.at(f), anchor_fix[f], np.ones(len(f), dtype=bool),
                            cfg.max_speed_mps, cfg.position_noise_m, cfg.max_vs_mps, cfg.altitude_noise_m)
            codes[pending, k - 1] = c
            ok = c == 0
            f, r = f[ok], r[ok]
            same = (rows.lat[r] == anchor.lat[f]) & (rows.lon[r] == anchor.lon[f])
            end[f] = np.where(np.where(same, anchor_fix[f], rows.t[r]) == fix_t[r], r, -1)
            pending = pending[~ok]
        return Runs(end, slot, codes)


