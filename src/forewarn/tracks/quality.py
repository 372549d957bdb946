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

import math
from collections import Counter
from dataclasses import replace
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from forewarn.tracks.model import NUMERIC_FIELDS, FloatArray, PositionBatch, StrArray
from forewarn.tracks.quality_pairs import Rows, Runs, as_floats, fix_times, pair_codes, shift_within
from forewarn.tracks.quality_verdicts import (
    EARTH_RADIUS_M,
    PAIR_REASONS,
    ROW_REASONS,
    Flag,
    LastAccepted,
    QualityConfig,
    QualityResult,
    Reason,
    haversine_m,
)

IntArray = npt.NDArray[np.intp]
_T = TypeVar("_T", bound=np.generic)
BoolArray = npt.NDArray[np.bool_]

__all__ = ["EARTH_RADIUS_M", "FeedQuality", "Flag", "LastAccepted", "QualityConfig", "QualityResult", "Reason",
           "haversine_m"]


class FeedQuality:
    """Screens batches of one or more sources; keeps the last accepted point per (source, track)."""

    def __init__(self, config: QualityConfig | None = None, *, window: int = 16, lookahead: int = 8) -> None:
        """Tuning knobs that never change a verdict: rejection runs of up to ``lookahead`` rows are decided for
        the whole batch at once, longer ones ``window`` rows at a time."""
        self.config = config or QualityConfig()
        self._state: dict[str, dict[str, LastAccepted]] = {}
        self._counts: dict[str, Counter[str]] = {}
        self._window = max(1, int(window))
        self._lookahead = max(0, int(lookahead))

    def last_accepted(self, source: str, track_id: str) -> LastAccepted | None:
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
        cols = {name: as_floats(getattr(batch, name)) for name in NUMERIC_FIELDS}
        with np.errstate(all="ignore"):
            row_code = self._row_codes(ids < 0, cols, cfg)
            valid = np.flatnonzero(row_code < 0)
            codes = rank[ids[valid]]
            order = valid[np.lexsort((cols["t_s"][valid], codes))]
            present = np.unique(codes)  # groups with valid rows, renumbered 0..k-1 in track id order
            group = np.searchsorted(present, rank[ids[order]])
            rows = Rows(cols["t_s"][order], cols["lat_deg"][order], cols["lon_deg"][order], cols["alt_m"][order],
                         cols["gs_mps"][order], cols["track_deg"][order], cols["vs_mps"][order],
                         np.asarray(batch.callsign, dtype=object)[order])
            accepted, pair_code, flag_rows, flag_names = self._screen(rows, group, keys[present], source, cfg)
        rejected = np.concatenate([np.flatnonzero(row_code >= 0), order[~accepted]])
        reasons = np.concatenate([np.array([ROW_REASONS[c] for c in row_code[row_code >= 0]], dtype=object),
                                  np.array([PAIR_REASONS[c] for c in pair_code[~accepted]], dtype=object)])
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
        """Index into :data:`ROW_REASONS` of the first failing row check, -1 if none fails."""
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

    def _screen(self, rows: Rows, group: IntArray, keys: StrArray, source: str, cfg: QualityConfig) -> tuple[
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
        nan_state = LastAccepted(*(math.nan,) * 7, "", math.nan)
        st = [s if s is not None else nan_state for s in known]
        st_rows = Rows.of([*(np.array([s[i] for s in st], dtype=np.float64) for i in range(7)),
                               np.array([s.callsign for s in st], dtype=object)])
        st_fix = np.array([s.fix_t_s for s in st], dtype=np.float64)

        # Optimistic pass: every row's anchor is the row before it (or the state) -> exact until a rejection.
        has_anchor = np.where(first, has_state[group], True)
        anchor = Rows.of((shift_within(col, first, st_col) for col, st_col in zip(rows, st_rows, strict=True)))
        fix_t, _ = fix_times(rows, anchor, st_fix[group], has_anchor, first)
        anchor_fix = shift_within(fix_t, first, st_fix)
        code = pair_codes(rows, anchor, anchor_fix, has_anchor, cfg.max_speed_mps, cfg.position_noise_m,
                           cfg.max_vs_mps, cfg.altitude_noise_m)
        failing = code != 0
        nxt = np.minimum.accumulate(np.where(failing, np.arange(n), n)[::-1])[::-1] if n else failing.astype(np.intp)
        accepted = np.ones(n, dtype=bool)
        run = Runs.speculate(rows, anchor, anchor_fix, fix_t, group, failing, cfg, self._lookahead)
        for g in np.flatnonzero(nxt[starts] < ends):
            self._resolve(rows, int(starts[g]), int(ends[g]), nxt, run, code, fix_t, anchor_fix, accepted,
                          st_rows.at(slice(g, g + 1)), st_fix[g:g + 1], cfg)

        flag_rows, flag_names, acc_fix = self._flags(rows.at(accepted), group[accepted], has_state, st_rows,
                                                     st_fix, cfg)
        acc = np.flatnonzero(accepted)
        last = np.flatnonzero(np.append(group[acc][1:] != group[acc][:-1], True)) if len(acc) else acc
        for k in last:
            i = acc[k]
            states[str(keys[group[i]])] = LastAccepted(
                float(rows.t[i]), float(rows.lat[i]), float(rows.lon[i]), float(rows.alt[i]), float(rows.gs[i]),
                float(rows.trk[i]), float(rows.vs[i]), rows.cs[i] if isinstance(rows.cs[i], str) else "",
                float(acc_fix[k]))
        return accepted, code, acc[flag_rows], flag_names

    def _resolve(self, rows: Rows, start: int, end: int, nxt: IntArray, run: Runs,
                 code: npt.NDArray[np.int8], fix_t: FloatArray, anchor_fix: FloatArray, accepted: BoolArray,
                 state: Rows, state_fix: FloatArray, cfg: QualityConfig) -> None:
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
            c = pair_codes(part, a_rows, a_fix, np.ones(stop - i, dtype=bool), cfg.max_speed_mps,
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
    def _flags(acc: Rows, group: IntArray, has_state: BoolArray, st_rows: Rows, st_fix: FloatArray,
               cfg: QualityConfig) -> tuple[IntArray, StrArray, FloatArray]:
        """Flags of the accepted rows (positions in ``acc``) and their fix times."""
        n = len(acc.t)
        first = np.ones(n, dtype=bool)
        first[1:] = group[1:] != group[:-1]
        g_first = group[first]
        has_anchor = np.where(first, has_state[group], True)
        anchor = Rows.of((shift_within(col, first, st_col[g_first]) for col, st_col in zip(acc, st_rows, strict=True)))
        fix_t, same_pos = fix_times(acc, anchor, st_fix[group], has_anchor, first)
        anchor_fix = shift_within(fix_t, first, st_fix[g_first])
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
