"""The data of tactical conflict prediction: separation minima, the state vectors of N tracks
(:class:`TrackVectors`) and the conflicts found (:class:`PredictedConflicts`), with the constants of the method.

Units and datums as in :mod:`forewarn.tracks.cpa`: WGS84 degrees, metres, metres per second, degrees clockwise
from true north, seconds from the moment the state vectors describe.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import numpy.typing as npt
import pyproj

from forewarn.tracks.model import PositionBatch
from forewarn.units import FOOT_M, NAUTICAL_MILE_M

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

Model = Literal["geodesic", "bluesky"]

NM_M = NAUTICAL_MILE_M
"""One nautical mile in metres (exact)."""
FT_M = FOOT_M
"""One foot in metres (exact)."""
BLUESKY_EARTH_RADIUS_M = 6_371_000.0
"""Radius of BlueSky's spherical Earth (``bluesky.tools.geo.kwikqdrdist_matrix``)."""

SLICE_PER_MINIMUM = 2.0
"""Broad phase: the look-ahead is cut into time slices of about this many horizontal minima flown at the top speed
(boxes of one slice per track; a pair is a candidate when its boxes of one slice overlap)."""
MAX_SLICES = 2
"""At most this many time slices (more slices mean fewer candidate pairs but more grid entries; measured on 10k dense
and 100k constant-density traffic, 2 is best overall: 4 helps at 10k and costs twice as much at 100k)."""

CHUNK_PAIRS = 1 << 18
"""Candidate pairs evaluated per vectorised chunk (bounds the narrow phase's temporary memory)."""

MIN_REL_SPEED2 = 1e-12  # (m/s)^2: below this the horizontal relative motion is treated as none (geodesic model)
MIN_REL_VS = 1e-9  # m/s: below this the vertical relative motion is treated as none (geodesic model)
PAD_M = 1.0  # metres added to every broad-phase box: rounding margin


GEODESIC_ERROR_RADIUS_M = 6_371_000.0
"""Earth radius in the stated error bound of the geodesic model (:func:`geodesic_cpa_error_bound_m`)."""


def geodesic_cpa_error_bound_m(max_speed_mps: float, horizon_s: float) -> float:
    """The stated bound (metres) on how far the geodesic model's CPA distance may be from that of two aircraft flying
    WGS84 geodesics (pyproj) at up to ``max_speed_mps`` for up to ``horizon_s`` seconds, at latitudes up to 80
    degrees: ``(v t)^3 / R^2 + 0.5 m``. The straight tangent line shortens each track's progress by about
    ``s^3 / (3 R^2)`` against the geodesic (``s = v t``), in the two tracks' own directions, so the error grows with
    the cube of the distance flown and is largest at the end of the look-ahead. 18.5 m at 300 m/s and 300 s,
    13 m at 268 m/s, 5.8 m at 200 m/s; measured worst 0.83 of the bound in 4,339 random encounters (14.4 m
    at 293 m/s, the CPA at the 300 s horizon; tests/test_cpa_accuracy.py checks it against a fine sampling of the
    geodesics).
    """
    return (max_speed_mps * horizon_s) ** 3 / GEODESIC_ERROR_RADIUS_M**2 + 0.5


@lru_cache(maxsize=1)
def wgs84() -> pyproj.Geod:
    """The WGS84 ellipsoid's geodesics (pyproj), made once."""
    return pyproj.Geod(ellps="WGS84")


@dataclass(frozen=True, slots=True)
class Minima:
    """Separation minima of a pair of tracks: horizontal and vertical distance, metres."""

    horizontal_m: float = 5 * NM_M
    vertical_m: float = 1000 * FT_M

    def __post_init__(self) -> None:
        object.__setattr__(self, "horizontal_m", float(self.horizontal_m))
        object.__setattr__(self, "vertical_m", float(self.vertical_m))
        if not (self.horizontal_m > 0 and self.vertical_m > 0 and math.isfinite(self.horizontal_m)
                and math.isfinite(self.vertical_m)):
            raise ValueError(f"minima must be positive and finite, got {self.horizontal_m} m / {self.vertical_m} m")


DEFAULT_MINIMA = Minima()
"""5 NM (9,260 m) horizontally, 1,000 ft (304.8 m) vertically."""

MinimaSpec = (
    Minima
    | Mapping[tuple[int, int], Minima | tuple[float, float] | None]
    | Callable[[int, int], Minima | tuple[float, float] | None]
)
"""One minima for every pair; or a table (group_a, group_b) -> minima (either order; missing pairs get
``default_minima``); or a callable (group_a, group_b) -> minima. ``None`` means: that pair of groups is not checked."""


@dataclass(frozen=True)
class TrackVectors:
    """Current state vectors of N tracks, one row per track (units and datums in the module docstring).

    ``group``: the party (or any grouping) of each track as an int; pairs within one group are never conflicts.
    ``track_id``: optional labels (object array), carried along for callers.
    """

    lat_deg: FloatArray
    lon_deg: FloatArray
    alt_m: FloatArray
    gs_mps: FloatArray
    track_deg: FloatArray
    vs_mps: FloatArray
    group: IntArray
    track_id: npt.NDArray[np.object_] | None = None

    def __post_init__(self) -> None:
        n = len(self.lat_deg)
        for name in ("lon_deg", "alt_m", "gs_mps", "track_deg", "vs_mps", "group"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"column {name} has {len(getattr(self, name))} rows, expected {n}")
        if self.track_id is not None and len(self.track_id) != n:
            raise ValueError(f"column track_id has {len(self.track_id)} rows, expected {n}")

    def __len__(self) -> int:
        return len(self.lat_deg)

    @classmethod
    def from_arrays(
        cls, lat_deg: npt.ArrayLike, lon_deg: npt.ArrayLike, alt_m: npt.ArrayLike, gs_mps: npt.ArrayLike,
        track_deg: npt.ArrayLike, vs_mps: npt.ArrayLike, group: npt.ArrayLike | None = None,
        track_id: npt.ArrayLike | None = None,
    ) -> TrackVectors:
        """State from array-likes (float64 copies); ``group`` defaults to every track its own group."""
        lat = np.asarray(lat_deg, dtype=np.float64)
        grp = np.arange(len(lat), dtype=np.int64) if group is None else np.asarray(group, dtype=np.int64)
        return cls(lat, np.asarray(lon_deg, dtype=np.float64), np.asarray(alt_m, dtype=np.float64),
                   np.asarray(gs_mps, dtype=np.float64), np.asarray(track_deg, dtype=np.float64),
                   np.asarray(vs_mps, dtype=np.float64), grp,
                   None if track_id is None else np.asarray(track_id, dtype=object))

    @classmethod
    def from_batch(cls, batch: PositionBatch, group_of: Mapping[str, int] | Callable[[str], int],
                   at_s: float | None = None) -> TrackVectors:
        """The latest report of each track of ``batch`` (largest ``t_s``), labelled by ``track_id``.

        ``group_of`` maps a track id to its group (party index). With ``at_s`` (POSIX seconds, UTC), each report
        is first extrapolated to that instant along its geodesic (pyproj) at its ground speed and track, and its
        altitude by its vertical speed. A missing vertical speed (NaN) counts as level flight; tracks missing a
        position, altitude, ground speed or track are dropped (they cannot be extrapolated).
        """
        if len(batch) == 0:
            return cls.from_arrays([], [], [], [], [], [], [], np.empty(0, dtype=object))
        order = np.lexsort((batch.t_s, batch.track_id.astype(str)))
        ids = batch.track_id[order].astype(str)
        last = np.ones(len(order), dtype=bool)
        last[:-1] = ids[1:] != ids[:-1]
        rows = order[last]
        b = batch.take(rows)
        vs = np.where(np.isnan(b.vs_mps), 0.0, b.vs_mps)
        ok = np.isfinite(b.lat_deg) & np.isfinite(b.lon_deg) & np.isfinite(b.alt_m) & np.isfinite(b.gs_mps) & \
            np.isfinite(b.track_deg)
        lat, lon, alt, gs, trk, vs = b.lat_deg[ok], b.lon_deg[ok], b.alt_m[ok], b.gs_mps[ok], b.track_deg[ok], vs[ok]
        if at_s is not None and len(lat):
            dt = at_s - b.t_s[ok]
            lon, lat, back = wgs84().fwd(lon, lat, trk, gs * dt)
            trk = np.where(gs * dt != 0.0, (np.asarray(back) + 180.0) % 360.0, trk)
            alt = alt + vs * dt
        lookup = group_of.__getitem__ if isinstance(group_of, Mapping) else group_of
        track_ids = b.track_id[ok]
        return cls.from_arrays(lat, lon, alt, gs, trk, vs, [lookup(str(t)) for t in track_ids], track_ids)


@dataclass(frozen=True)
class PredictedConflicts:
    """Predicted conflicts, one row per pair of tracks, columnar, sorted by ``(i, j)``.

    ``i < j``: row indices into the :class:`TrackVectors`. ``t_los_s``: time to loss of separation, seconds (0 when
    already lost). ``t_cpa_s``: time of the horizontal closest point of approach within ``[0, lookahead_s]``,
    seconds. ``h_cpa_m``: horizontal distance at that time, metres. ``v_cpa_m``: absolute vertical separation at that
    time, metres. ``los_now``: already in loss of separation now (horizontally and vertically).
    ``horizontal_m``/``vertical_m``: the minima applied to the pair, metres.
    """

    i: IntArray
    j: IntArray
    t_los_s: FloatArray
    t_cpa_s: FloatArray
    h_cpa_m: FloatArray
    v_cpa_m: FloatArray
    los_now: BoolArray
    horizontal_m: FloatArray
    vertical_m: FloatArray

    def __len__(self) -> int:
        return len(self.i)

    def pairs(self) -> set[tuple[int, int]]:
        """The conflicting pairs as a set of ``(i, j)``, ``i < j``."""
        return set(zip(self.i.tolist(), self.j.tolist(), strict=True))

    @classmethod
    def empty(cls) -> PredictedConflicts:
        """No conflicts."""
        f = np.empty(0, dtype=np.float64)
        k = np.empty(0, dtype=np.int64)
        return cls(k, k.copy(), f, f.copy(), f.copy(), f.copy(), np.empty(0, dtype=bool), f.copy(), f.copy())

    @classmethod
    def concat(cls, parts: list[PredictedConflicts]) -> PredictedConflicts:
        """Rows of all ``parts``, in order."""
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in cls.__dataclass_fields__))


