"""Feed-quality screening of position batches: vectorised with NumPy, stateful per source and track.

:class:`FeedQuality` keeps, per source and per track, the **last accepted point** and checks every new batch
against it. Units and datums are those of :mod:`forewarn.tracks.model` (POSIX seconds UTC, WGS84 degrees, metres,
metres per second). Distances are great-circle distances on a sphere of radius :data:`EARTH_RADIUS_M` (mean Earth
radius; within 0.5 % of the WGS84 geodesic, plenty for plausibility checks).

How a batch is screened
-----------------------
1. Row checks (no state): missing track id, time, latitude or longitude -> ``missing``; time outside
   ``[min_t_s, max_t_s]`` -> ``time_out_of_range``; ``|lat| > 90`` -> ``lat_out_of_range``; longitude outside
   ``[-180, 180]`` -> ``lon_out_of_range``; altitude outside ``[min_alt_m, max_alt_m]`` -> ``alt_out_of_range``;
   ground speed ``< 0`` or above the maximum speed -> ``speed_out_of_range``; ``|vs| > max_vs_mps`` ->
   ``vertical_speed_out_of_range``; course outside ``[0, 360]`` -> ``track_out_of_range``. Optional fields may be
   NaN (missing) but not infinite. The first failing check names the reason.
2. The remaining rows are sorted by (track id, time), stably: **a batch is a reordering window**, rows of one track
   arriving out of order inside one batch are put in order; only rows older than the last accepted point of an
   earlier batch are ``time_backwards``.
3. Each row is compared with the last accepted point of its track (the *anchor*: the previous accepted row, or the
   state kept from earlier batches):

   * ``time_backwards``: older than the anchor;
   * ``duplicate``: the same time and every field equal to the anchor (NaN equals NaN);
   * ``time_not_advancing``: the same time as the anchor but different content (two positions at one instant);
   * ``impossible_vertical_speed``: the altitude change from the anchor, less ``altitude_noise_m``, needs a climb or
     descent faster than ``max_vs_mps`` (checked after ``impossible_speed``): the one-sample altitude spikes of
     real defective ADS-B (5-8 km in one second, e.g. FL125 -> FL340 -> FL125 in ``quickstart.json.gz``) are
     rejected, and the next good row is compared with the good anchor before the spike, so a spike neither
     moves the track nor raises an intrusion;
   * ``impossible_speed``: the distance from the anchor, less ``position_noise_m``, needs more than the maximum
     speed (configurable per call: aircraft 1,200 m/s by default, pass more for missiles). The time base is the
     moment the anchor's position was *first* reported (``fix time``): feeds that repeat a stale position every
     second and then catch up are judged on the real elapsed time, not on the last one-second step.

   Rejected rows never change the state, so the row after a rejected one is compared with the same anchor
   (an isolated outlier beyond the speed limit is rejected and the track continues from the good point before it).
4. Accepted rows may carry flags (suspicious, not rejected), heuristics for stale or spoofed data:

   * ``frozen_position``: the same latitude/longitude as the anchor for ``frozen_after_s`` or more since the fix
     time, while the reported ground speed exceeds ``frozen_min_gs_mps`` (a stale or frozen position);
   * ``speed_mismatch``: the position moved faster than ``mismatch_factor`` x reported ground speed +
     ``mismatch_slack_mps`` (jumps below the hard limit: a spoofed offset or a jump that returns is flagged both
     going out and coming back);
   * ``slow_at_altitude``: altitude above ``slow_alt_m`` with a ground speed below ``slow_max_gs_mps``; a
     fixed-wing aircraft cannot fly that slowly that high (typical of spoofed GNSS positions; balloons and
     helicopters there would be flagged too, which is why this only flags).

Vectorisation: the comparisons with the previous row are computed for the whole batch at once (valid as long as
every row is accepted). Where a row is rejected the rows after it must be compared with the unchanged anchor:
runs of up to ``lookahead`` rejected rows are worked out for all rejected rows of the batch at once; longer ones
are re-checked in vectorised windows; the batch-wide comparisons are used again as soon as they are valid. Only
rejection runs cost a Python-level step each.
"""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt

from forewarn.tracks.model import NUMERIC_FIELDS, FloatArray, PositionBatch, StrArray

IntArray = npt.NDArray[np.intp]
_T = TypeVar("_T", bound=np.generic)
BoolArray = npt.NDArray[np.bool_]

EARTH_RADIUS_M = 6_371_008.8
"""Mean Earth radius (IUGG) in metres, used for great-circle distances."""


class Reason(StrEnum):
    """Why a row was rejected (first failing check)."""

    MISSING = "missing"
    TIME_RANGE = "time_out_of_range"
    LAT_RANGE = "lat_out_of_range"
    LON_RANGE = "lon_out_of_range"
    ALT_RANGE = "alt_out_of_range"
    SPEED_RANGE = "speed_out_of_range"
    VS_RANGE = "vertical_speed_out_of_range"
    TRACK_RANGE = "track_out_of_range"
    BACKWARDS = "time_backwards"
    DUPLICATE = "duplicate"
    SAME_TIME = "time_not_advancing"
    TELEPORT = "impossible_speed"
    CLIMB = "impossible_vertical_speed"
    STORED = "already_stored"
    """The same (party, track, time) is already stored: a position fed again (not checked again)."""


class Flag(StrEnum):
    """Why an accepted row is suspicious."""

    FROZEN = "frozen_position"
    SPEED_MISMATCH = "speed_mismatch"
    SLOW_AT_ALTITUDE = "slow_at_altitude"


_ROW_REASONS = (Reason.MISSING, Reason.TIME_RANGE, Reason.LAT_RANGE, Reason.LON_RANGE, Reason.ALT_RANGE,
                Reason.SPEED_RANGE, Reason.VS_RANGE, Reason.TRACK_RANGE)
_PAIR_REASONS = ("", Reason.BACKWARDS, Reason.DUPLICATE, Reason.SAME_TIME, Reason.TELEPORT, Reason.CLIMB)
"""Codes of the anchor comparison: 0 = passes."""



@dataclass(frozen=True, slots=True)
class QualityConfig:
    """Thresholds (units in the names: metres, metres per second, POSIX seconds UTC)."""

    max_speed_mps: float = 1200.0
    min_alt_m: float = -500.0
    max_alt_m: float = 30_000.0
    max_vs_mps: float = 300.0
    min_t_s: float = 0.0
    max_t_s: float = 4_102_444_800.0  # 2100-01-01T00:00:00Z
    position_noise_m: float = 50.0
    altitude_noise_m: float = 60.0
    frozen_after_s: float = 20.0
    frozen_min_gs_mps: float = 5.0
    mismatch_factor: float = 3.0
    mismatch_slack_mps: float = 50.0
    slow_alt_m: float = 7_500.0
    slow_max_gs_mps: float = 50.0


class TrackState(NamedTuple):
    """The last accepted point of a track, and the time its position was first reported (``fix_t_s``)."""

    t_s: float
    lat_deg: float
    lon_deg: float
    alt_m: float
    gs_mps: float
    track_deg: float
    vs_mps: float
    callsign: str
    fix_t_s: float


@dataclass(frozen=True)
class QualityResult:
    """The verdict on one batch. Indices are row numbers of the input batch.

    ``accepted`` holds the accepted rows sorted by (track id, time); ``accepted_index`` their input rows.
    ``rejected_index``/``rejected_reason`` are in input order. ``flagged_index``/``flagged_reason`` list accepted
    rows with a flag, one entry per (row, flag). ``counts`` counts this batch (``accepted``, ``rejected``,
    ``flagged``, ``rejected:<reason>``, ``flagged:<flag>``).
    """

    accepted: PositionBatch
    accepted_index: IntArray
    rejected_index: IntArray
    rejected_reason: StrArray
    flagged_index: IntArray
    flagged_reason: StrArray
    counts: dict[str, int]

    def with_stored(self, stored: BoolArray) -> QualityResult:
        """This verdict on the rows of a batch not ``stored``, as a verdict on the whole batch: row numbers mapped
        back, the stored rows rejected as :attr:`Reason.STORED` and counted."""
        if not stored.any():
            return self
        rows = np.flatnonzero(~stored)
        dropped = np.flatnonzero(stored)
        rejected = np.concatenate([rows[self.rejected_index], dropped])
        reasons = np.concatenate([self.rejected_reason, np.full(len(dropped), str(Reason.STORED), dtype=object)])
        by_row = np.argsort(rejected, kind="stable")
        counts = dict(self.counts)
        for key in ("received", "rejected", f"rejected:{Reason.STORED}"):
            counts[key] = counts.get(key, 0) + len(dropped)
        return QualityResult(self.accepted, rows[self.accepted_index], rejected[by_row],
                             reasons[by_row].astype(object), rows[self.flagged_index], self.flagged_reason, counts)

    def reasons(self) -> dict[int, str]:
        """Rejected input row -> reason."""
        return {int(i): str(r) for i, r in zip(self.rejected_index, self.rejected_reason, strict=True)}

    def flags(self) -> dict[int, set[str]]:
        """Flagged input row -> its flags."""
        out: dict[int, set[str]] = {}
        for i, f in zip(self.flagged_index, self.flagged_reason, strict=True):
            out.setdefault(int(i), set()).add(str(f))
        return out


def haversine_m(lat1: FloatArray, lon1: FloatArray, lat2: FloatArray, lon2: FloatArray) -> FloatArray:
    """Great-circle distance in metres between WGS84 points (degrees), on the mean-radius sphere."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    h = np.sin((p2 - p1) / 2.0) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2.0) ** 2
    return np.asarray(2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0))), dtype=np.float64)


class _Rows(NamedTuple):
    """Columns of rows (or of their anchors); ``cs`` is the callsign."""

    t: FloatArray
    lat: FloatArray
    lon: FloatArray
    alt: FloatArray
    gs: FloatArray
    trk: FloatArray
    vs: FloatArray
    cs: StrArray

    def at(self, index: IntArray | BoolArray | slice) -> _Rows:
        return _Rows._make(c[index] for c in self)


def _same(a: FloatArray, b: FloatArray) -> BoolArray:
    return np.asarray((a == b) | (np.isnan(a) & np.isnan(b)))


def _pair_codes(rows: _Rows, anchor: _Rows, fix_t: FloatArray, has_anchor: BoolArray, max_speed: float,
                noise_m: float, max_climb: float = 300.0, alt_noise_m: float = 60.0) -> npt.NDArray[np.int8]:
    """Codes of :data:`_PAIR_REASONS` for each row against its anchor (arrays broadcast). The vertical check:
    ``|alt - anchor alt| - alt_noise_m > max_climb * (t - anchor t)`` (metres, m/s; a missing altitude passes)."""
    same_t = rows.t == anchor.t
    identical = same_t & (rows.cs == anchor.cs)
    for name in ("lat", "lon", "alt", "gs", "trk", "vs"):
        identical &= _same(getattr(rows, name), getattr(anchor, name))
    dist = haversine_m(anchor.lat, anchor.lon, rows.lat, rows.lon)
    too_fast = dist - noise_m > max_speed * (rows.t - fix_t)
    too_steep = np.abs(rows.alt - anchor.alt) - alt_noise_m > max_climb * (rows.t - anchor.t)
    code = np.select([rows.t < anchor.t, identical, same_t, too_fast, too_steep], [1, 2, 3, 4, 5],
                     0).astype(np.int8)
    return np.asarray(np.where(has_anchor, code, 0), dtype=np.int8)


def _shift(values: npt.NDArray[_T], first: BoolArray, at_first: npt.NDArray[_T]) -> npt.NDArray[_T]:
    """The previous row's value within a group; ``at_first`` (one per group) for the first row of each group."""
    out = np.empty_like(values)
    out[1:] = values[:-1]
    out[first] = at_first
    return out


def _fix_times(rows: _Rows, anchor: _Rows, fix_anchor: FloatArray, has_anchor: BoolArray,
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


def _as_floats(values: npt.NDArray[np.generic]) -> FloatArray:
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


class _Runs(NamedTuple):
    """Rejection runs decided in advance, for every row ``f`` failing in the optimistic pass, *if* ``f`` turns out
    to be compared with its optimistic anchor (row f-1 or the state): ``end[f]`` is the first row after ``f``
    that passes against that anchor and after which the optimistic codes hold again (-1: not within
    ``lookahead`` rows, or they would not hold); ``codes[slot[f]]`` are the codes of the rows in between."""

    end: IntArray
    slot: IntArray
    codes: npt.NDArray[np.int8]

    @staticmethod
    def speculate(rows: _Rows, anchor: _Rows, anchor_fix: FloatArray, fix_t: FloatArray, group: IntArray,
                  failing: BoolArray, cfg: QualityConfig, lookahead: int) -> _Runs:
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
            c = _pair_codes(rows.at(r), anchor.at(f), anchor_fix[f], np.ones(len(f), dtype=bool),
                            cfg.max_speed_mps, cfg.position_noise_m, cfg.max_vs_mps, cfg.altitude_noise_m)
            codes[pending, k - 1] = c
            ok = c == 0
            f, r = f[ok], r[ok]
            same = (rows.lat[r] == anchor.lat[f]) & (rows.lon[r] == anchor.lon[f])
            end[f] = np.where(np.where(same, anchor_fix[f], rows.t[r]) == fix_t[r], r, -1)
            pending = pending[~ok]
        return _Runs(end, slot, codes)


class FeedQuality:
    """Screens batches of one or more sources; keeps the last accepted point per (source, track)."""

    def __init__(self, config: QualityConfig | None = None, *, window: int = 16, lookahead: int = 8) -> None:
        """Tuning knobs that never change a verdict: rejection runs of up to ``lookahead`` rows are decided for
        the whole batch at once, longer ones ``window`` rows at a time."""
        self.config = config or QualityConfig()
        self._state: dict[str, dict[str, TrackState]] = {}
        self._counts: dict[str, Counter[str]] = {}
        self._window = max(1, int(window))
        self._lookahead = max(0, int(lookahead))

    def last_accepted(self, source: str, track_id: str) -> TrackState | None:
        """The state kept for a track, or None."""
        return self._state.get(source, {}).get(track_id)

    def counters(self, source: str) -> dict[str, int]:
        """Running counts for a source since creation (keys as in :attr:`QualityResult.counts`)."""
        return dict(self._counts.get(source, Counter()))

    def check(self, batch: PositionBatch, source: str, *, max_speed_mps: float | None = None) -> QualityResult:
        """Screen ``batch`` from ``source``; accepted rows become the new state of their tracks.

        ``max_speed_mps`` overrides the configured maximum speed (m/s) for this call (e.g. for missiles).
        """
        cfg = self.config if max_speed_mps is None else replace(self.config, max_speed_mps=float(max_speed_mps))
        n = len(batch)
        number: dict[str, int] = {}
        ids = np.fromiter((number.setdefault(x, len(number)) if isinstance(x, str) and x else -1
                           for x in batch.track_id), dtype=np.intp, count=n)
        keys = np.array(sorted(number), dtype=object)  # group numbers in track id order
        rank = np.empty(len(number), dtype=np.intp)
        rank[[number[k] for k in keys]] = np.arange(len(keys))
        cols = {name: _as_floats(getattr(batch, name)) for name in NUMERIC_FIELDS}
        with np.errstate(all="ignore"):
            row_code = self._row_codes(ids < 0, cols, cfg)
            valid = np.flatnonzero(row_code < 0)
            codes = rank[ids[valid]]
            order = valid[np.lexsort((cols["t_s"][valid], codes))]
            present = np.unique(codes)  # groups with valid rows, renumbered 0..k-1 in track id order
            group = np.searchsorted(present, rank[ids[order]])
            rows = _Rows(cols["t_s"][order], cols["lat_deg"][order], cols["lon_deg"][order], cols["alt_m"][order],
                         cols["gs_mps"][order], cols["track_deg"][order], cols["vs_mps"][order],
                         np.asarray(batch.callsign, dtype=object)[order])
            accepted, pair_code, flag_rows, flag_names = self._screen(rows, group, keys[present], source, cfg)
        rejected = np.concatenate([np.flatnonzero(row_code >= 0), order[~accepted]])
        reasons = np.concatenate([np.array([_ROW_REASONS[c] for c in row_code[row_code >= 0]], dtype=object),
                                  np.array([_PAIR_REASONS[c] for c in pair_code[~accepted]], dtype=object)])
        by_row = np.argsort(rejected, kind="stable")
        counts: Counter[str] = Counter({"received": n, "accepted": int(accepted.sum()), "rejected": len(rejected),
                                        "flagged": len(np.unique(flag_rows))})
        counts.update(f"rejected:{r}" for r in reasons)
        counts.update(f"flagged:{f}" for f in flag_names)
        self._counts.setdefault(source, Counter()).update(counts)
        return QualityResult(
            accepted=batch.take(order[accepted]), accepted_index=order[accepted],
            rejected_index=rejected[by_row], rejected_reason=reasons[by_row].astype(object),
            flagged_index=order[flag_rows], flagged_reason=flag_names, counts=dict(counts))

    @staticmethod
    def _row_codes(no_id: BoolArray, c: dict[str, FloatArray], cfg: QualityConfig) -> npt.NDArray[np.int64]:
        """Index into :data:`_ROW_REASONS` of the first failing row check, -1 if none fails."""
        t, lat, lon, alt, gs, trk, vs = (c[name] for name in NUMERIC_FIELDS)

        def bad(x: FloatArray, low: float, high: float) -> BoolArray:  # NaN passes, infinity fails
            return np.asarray(np.isinf(x) | (x < low) | (x > high))

        conditions = [
            no_id | np.isnan(t) | np.isnan(lat) | np.isnan(lon),
            ~((t >= cfg.min_t_s) & (t <= cfg.max_t_s)),
            ~(np.abs(lat) <= 90.0),
            ~((lon >= -180.0) & (lon <= 180.0)),
            bad(alt, cfg.min_alt_m, cfg.max_alt_m),
            bad(gs, 0.0, cfg.max_speed_mps),
            bad(vs, -cfg.max_vs_mps, cfg.max_vs_mps),
            bad(trk, 0.0, 360.0),
        ]
        return np.asarray(np.select(conditions, list(range(len(conditions))), -1), dtype=np.int64)

    def _screen(self, rows: _Rows, group: IntArray, keys: StrArray, source: str, cfg: QualityConfig) -> tuple[
            BoolArray, npt.NDArray[np.int8], IntArray, StrArray]:
        """Anchor checks and flags for valid rows sorted by (group, time); updates the state."""
        n = len(rows.t)
        states = self._state.setdefault(source, {})
        first = np.ones(n, dtype=bool)
        first[1:] = group[1:] != group[:-1]
        starts = np.flatnonzero(first)
        ends = np.append(starts[1:], n)
        known = [states.get(str(k)) for k in keys]
        has_state = np.array([s is not None for s in known], dtype=bool)
        nan_state = TrackState(*(math.nan,) * 7, "", math.nan)
        st = [s if s is not None else nan_state for s in known]
        st_rows = _Rows._make([*(np.array([s[i] for s in st], dtype=np.float64) for i in range(7)),
                               np.array([s.callsign for s in st], dtype=object)])
        st_fix = np.array([s.fix_t_s for s in st], dtype=np.float64)

        # Optimistic pass: every row's anchor is the row before it (or the state) -> exact until a rejection.
        has_anchor = np.where(first, has_state[group], True)
        anchor = _Rows._make(_shift(col, first, st_col) for col, st_col in zip(rows, st_rows, strict=True))
        fix_t, _ = _fix_times(rows, anchor, st_fix[group], has_anchor, first)
        anchor_fix = _shift(fix_t, first, st_fix)
        code = _pair_codes(rows, anchor, anchor_fix, has_anchor, cfg.max_speed_mps, cfg.position_noise_m,
                           cfg.max_vs_mps, cfg.altitude_noise_m)
        failing = code != 0
        nxt = np.minimum.accumulate(np.where(failing, np.arange(n), n)[::-1])[::-1] if n else failing.astype(np.intp)
        accepted = np.ones(n, dtype=bool)
        run = _Runs.speculate(rows, anchor, anchor_fix, fix_t, group, failing, cfg, self._lookahead)
        for g in np.flatnonzero(nxt[starts] < ends):
            self._resolve(rows, int(starts[g]), int(ends[g]), nxt, run, code, fix_t, anchor_fix, accepted,
                          st_rows.at(slice(g, g + 1)), st_fix[g:g + 1], cfg)

        flag_rows, flag_names, acc_fix = self._flags(rows.at(accepted), group[accepted], has_state, st_rows,
                                                     st_fix, cfg)
        acc = np.flatnonzero(accepted)
        last = np.flatnonzero(np.append(group[acc][1:] != group[acc][:-1], True)) if len(acc) else acc
        for k in last:
            i = acc[k]
            states[str(keys[group[i]])] = TrackState(
                float(rows.t[i]), float(rows.lat[i]), float(rows.lon[i]), float(rows.alt[i]), float(rows.gs[i]),
                float(rows.trk[i]), float(rows.vs[i]), rows.cs[i] if isinstance(rows.cs[i], str) else "",
                float(acc_fix[k]))
        return accepted, code, acc[flag_rows], flag_names

    def _resolve(self, rows: _Rows, start: int, end: int, nxt: IntArray, run: _Runs,
                 code: npt.NDArray[np.int8], fix_t: FloatArray, anchor_fix: FloatArray, accepted: BoolArray,
                 state: _Rows, state_fix: FloatArray, cfg: QualityConfig) -> None:
        """Exact sequential verdicts for one group from its first rejection on (``code``/``accepted`` in place)."""
        i, chained = start, True
        a_rows, a_fix = state, state_fix
        window = self._window
        while i < end:
            if chained:  # the precomputed codes hold: jump to the next failure
                f = int(nxt[i])
                if f >= end:
                    return
                accepted[f] = False
                p = int(run.end[f])
                if p >= 0:  # a short run, decided in advance: the precomputed codes hold again after p
                    accepted[f + 1:p] = False
                    code[f + 1:p] = run.codes[run.slot[f], :p - f - 1]
                    code[p] = 0
                    i = p + 1
                    continue
                if f > start:
                    a_rows, a_fix = rows.at(slice(f - 1, f)), anchor_fix[f:f + 1]
                i, chained, window = f + 1, False, self._window
                continue
            stop = min(i + window, end)
            part = rows.at(slice(i, stop))
            c = _pair_codes(part, a_rows, a_fix, np.ones(stop - i, dtype=bool), cfg.max_speed_mps,
                            cfg.position_noise_m, cfg.max_vs_mps, cfg.altitude_noise_m)
            passing = np.flatnonzero(c == 0)
            k = int(passing[0]) if len(passing) else stop - i
            accepted[i:i + k] = False
            code[i:i + k] = c[:k]
            if not len(passing):
                i, window = stop, window * 2
                continue
            p = i + k
            code[p] = 0
            same = rows.lat[p] == a_rows.lat[0] and rows.lon[p] == a_rows.lon[0]
            a_fix = a_fix if same else rows.t[p:p + 1]
            a_rows = rows.at(slice(p, p + 1))
            chained = bool(a_fix[0] == fix_t[p])
            i, window = p + 1, self._window

    @staticmethod
    def _flags(acc: _Rows, group: IntArray, has_state: BoolArray, st_rows: _Rows, st_fix: FloatArray,
               cfg: QualityConfig) -> tuple[IntArray, StrArray, FloatArray]:
        """Flags of the accepted rows (positions in ``acc``) and their fix times."""
        n = len(acc.t)
        first = np.ones(n, dtype=bool)
        first[1:] = group[1:] != group[:-1]
        g_first = group[first]
        has_anchor = np.where(first, has_state[group], True)
        anchor = _Rows._make(_shift(col, first, st_col[g_first]) for col, st_col in zip(acc, st_rows, strict=True))
        fix_t, same_pos = _fix_times(acc, anchor, st_fix[group], has_anchor, first)
        anchor_fix = _shift(fix_t, first, st_fix[g_first])
        moved = haversine_m(anchor.lat, anchor.lon, acc.lat, acc.lon) - cfg.position_noise_m
        mismatch = has_anchor & ~same_pos & (moved > (cfg.mismatch_factor * acc.gs + cfg.mismatch_slack_mps)
                                             * (acc.t - anchor_fix))
        frozen = same_pos & (acc.gs > cfg.frozen_min_gs_mps) & (acc.t - fix_t >= cfg.frozen_after_s)
        slow = (acc.alt > cfg.slow_alt_m) & (acc.gs < cfg.slow_max_gs_mps)
        masks = ((Flag.FROZEN, frozen), (Flag.SPEED_MISMATCH, mismatch), (Flag.SLOW_AT_ALTITUDE, slow))
        idx = np.concatenate([np.flatnonzero(m) for _, m in masks])
        names = np.concatenate([np.full(int(m.sum()), str(f), dtype=object) for f, m in masks])
        by_row = np.argsort(idx, kind="stable")
        return idx[by_row], names[by_row].astype(object), fix_t
