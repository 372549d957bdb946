"""Tactical conflict prediction between live tracks: closest point of approach (CPA) within a look-ahead.

Every track is extrapolated along a straight line at its current ground speed, true track and vertical speed
(the state-based baseline). Two tracks of different groups (parties) are **in conflict** when, at some time
``t`` in ``[0, lookahead_s)``, they are both closer than the horizontal minimum and closer than the vertical
minimum of their pair of groups: ``tin < tout``, ``tout > 0`` and ``tin < lookahead_s``, where ``(tin, tout)`` is
the intersection of the open intervals in which the horizontal distance is under ``horizontal_m - 0.01`` and the
altitude difference is under ``vertical_m - 0.01`` (metres): the boundary rule of :mod:`forewarn.units`, so that
aircraft on adjacent flight levels (exactly 1,000 ft = 304.8 m apart, however FL x 100 x 0.3048 rounds) are
separated under a 1,000 ft minimum, and 999 ft apart are not. Pairs already in loss of separation are conflicts
(``t_los_s == 0``) as long as they have not separated yet. Longitudes must lie in [-180, 180] and latitudes in
[-90, 90] (``ValueError`` otherwise).

Units and datums: latitude/longitude in WGS84 degrees, altitudes in metres (compared as given; see
:mod:`forewarn.tracks.model`), speeds in metres per second, angles in degrees clockwise from true north, times in
seconds from the moment the state vectors describe, distances in metres.

Two distance models:

``model="geodesic"`` (default)
    Each track's surface point (WGS84 ellipsoid, height 0, through pyproj) and horizontal velocity vector
    (east/north at its own position) are expressed in Earth-centred Earth-fixed (ECEF) coordinates. For each pair,
    relative position and relative velocity are projected onto the horizontal plane at the pair's midpoint (normal
    = the mean of the two ellipsoid normals), where the closest approach is solved exactly. This is a local
    tangent-plane (ENU) projection per pair: it has no meridian-convergence or longitude-scale error and works
    across the antimeridian and near the poles. Error against ``pyproj.Geod`` (WGS84 geodesics): the distance
    between two points is off by about ``(d / R)^2 / 24`` relative (4e-5 at d = 200 km, 4e-7 at 5 NM); flying
    the tangent line instead of the geodesic shortens a track's progress by about ``s^3 / (3 R^2)`` (under 4 m
    after 300 s at 500 kt, alike for both aircraft of a pair).
    Stated bound (:func:`~forewarn.tracks.cpa_vectors.geodesic_cpa_error_bound_m`): the CPA distance of two
    aircraft flying pyproj geodesics at up to ``v`` m/s for up to ``t`` s, at latitudes up to 80 degrees, is
    within ``(v t)^3 / R^2 + 0.5 m`` of pyproj's: 5.8 m at 200 m/s, 13 m at 268 m/s, 18.5 m at 300 m/s over the
    300 s look-ahead (largest when the closest approach is at the horizon: real traffic at 268 m/s gave 6.5 m;
    14.4 m worst measured at 293 m/s), i.e. under 0.2 % of a 5 NM minimum. Encounters closing within 280 s at up to
    260 m/s stay within 5 m (1.1 m worst seen).
    Horizontal distances are measured on the ellipsoid surface (ground projection), not at flight level.

``model="bluesky"``
    BlueSky 1.1.1's flat-earth model and conflict definition, mirroring
    ``bluesky.traffic.asas.statebased.StateBased.detect`` formula by formula (spherical Earth of radius
    6,371,000 m, equirectangular ``kwikqdrdist`` per pair at the pair's mean latitude, the clamps of relative
    speeds under 1e-3 m/s and vertical speed differences under 1e-6 m/s, ``tin <= tout``, ``tout > 0``,
    ``tin < lookahead``), with BlueSky's strict comparisons (no boundary tolerance). It reports the same pairs as
    ``StateBased.detect`` and its compiled twin ``cstatebased.detect`` (checked by the tests on random traffic),
    with one deliberate difference: when the vertical speeds differ by under 1e-6 m/s the vertical test is
    ``|dalt| < vertical_m`` throughout (as the C++ ``detect_ver``), symmetric in the two aircraft, where NumPy's
    clamp of the difference to +1e-6 m/s makes a pair within ``lookahead x 1e-6`` m of the minimum a conflict in
    one input order and not the other. One global minima only. See docs/tracks.md for where BlueSky's two
    detectors differ from each other (antimeridian, zero relative speed).

Modules: :mod:`~forewarn.tracks.cpa_vectors` (minima, state vectors, results, constants),
:mod:`~forewarn.tracks.cpa_geometry` (minima table, ECEF frames, broad-phase boxes),
:mod:`~forewarn.tracks.cpa_narrow` (the numba kernels); this module holds the entry point. The brute-force oracle
used by the tests lives in ``tests/oracles.py``.

Scaling: a broad phase (:mod:`forewarn.tracks.broadphase`, a uniform grid) keeps only the pairs whose swept boxes
(position over a time slice of the look-ahead, padded by half the minima; altitude swept by the vertical speed)
overlap in the same slice; the narrow phase runs over those candidate pairs in chunks (numba kernels, one pass, no
temporaries). Memory is O(N + candidate pairs), never N x N.
"""

from __future__ import annotations

import math

import numpy as np

from forewarn.tracks.broadphase import candidate_pairs
from forewarn.tracks.cpa_geometry import MinimaTable, bluesky_candidates, minima_table, prepare
from forewarn.tracks.cpa_narrow import narrow_bluesky, narrow_geodesic
from forewarn.tracks.cpa_vectors import (
    BLUESKY_EARTH_RADIUS_M,
    CHUNK_PAIRS,
    DEFAULT_MINIMA,
    FT_M,
    MAX_SLICES,
    NM_M,
    SLICE_PER_MINIMUM,
    IntArray,
    Minima,
    MinimaSpec,
    Model,
    PredictedConflicts,
    TrackVectors,
    geodesic_cpa_error_bound_m,
)
from forewarn.units import DISTANCE_TOLERANCE_M

__all__ = ["BLUESKY_EARTH_RADIUS_M", "CHUNK_PAIRS", "DEFAULT_MINIMA", "FT_M", "MAX_SLICES", "NM_M",
           "SLICE_PER_MINIMUM", "Minima", "MinimaSpec", "Model", "PredictedConflicts", "TrackVectors",
           "check_inputs", "geodesic_cpa_error_bound_m", "predict_conflicts", "resolve_minima"]


def check_inputs(state: TrackVectors, lookahead_s: float, model: str) -> None:
    """ValueError for an unknown model, a bad look-ahead or state vectors out of range (module docstring)."""
    if model not in ("geodesic", "bluesky"):
        raise ValueError(f"model must be 'geodesic' or 'bluesky', got {model!r}")
    if not (lookahead_s > 0 and math.isfinite(lookahead_s)):
        raise ValueError(f"lookahead_s must be positive and finite, got {lookahead_s}")
    for name in ("lat_deg", "lon_deg", "alt_m", "gs_mps", "track_deg", "vs_mps"):
        if not np.all(np.isfinite(getattr(state, name))):
            raise ValueError(f"{name} has missing (NaN) or infinite values: drop those tracks first")
    if np.any(np.abs(state.lat_deg) > 90.0):
        bad = float(state.lat_deg[np.argmax(np.abs(state.lat_deg))])
        raise ValueError(f"lat_deg must lie in [-90, 90] (WGS84 degrees), got {bad}")
    if np.any(np.abs(state.lon_deg) > 180.0):
        bad = float(state.lon_deg[np.argmax(np.abs(state.lon_deg))])
        raise ValueError(f"lon_deg must lie in [-180, 180] (WGS84 degrees), got {bad}: wrap longitudes first")
    if np.any(state.gs_mps < 0.0):
        raise ValueError("gs_mps must be >= 0")


def resolve_minima(state: TrackVectors, minima: MinimaSpec, default_minima: Minima, model: str
             ) -> tuple[MinimaTable, IntArray]:
    """The minima table of the groups and each track's group code."""
    if model == "bluesky" and not isinstance(minima, Minima):
        raise ValueError("model='bluesky' takes one global Minima (BlueSky has no minima per pair of groups)")
    return minima_table(minima, np.asarray(state.group, dtype=np.int64), default_minima)


def predict_conflicts(
    state: TrackVectors,
    minima: MinimaSpec = DEFAULT_MINIMA,
    *,
    lookahead_s: float = 300.0,
    model: Model = "geodesic",
    default_minima: Minima = DEFAULT_MINIMA,
) -> PredictedConflicts:
    """Conflicts between tracks of different groups within ``lookahead_s`` seconds (definition in the module doc).

    ``minima``: one :class:`Minima` (metres), or per pair of groups a table or callable (see :data:`MinimaSpec`;
    ``default_minima`` fills pairs missing from a table). ``model``: ``"geodesic"`` (WGS84, default) or
    ``"bluesky"`` (BlueSky's flat-earth detector, reproduced exactly; one global minima).
    Cost: O(N log N + candidate pairs); memory O(N + candidate pairs).
    """
    check_inputs(state, lookahead_s, model)
    table, codes = resolve_minima(state, minima, default_minima, model)
    if len(state) < 2 or table.h_max <= 0.0:
        return PredictedConflicts.empty()
    prep = prepare(state, table, lookahead_s, model)
    if model == "bluesky":
        ci, cj = bluesky_candidates(prep, codes)
    else:
        ci, cj = candidate_pairs(prep.box_lo, prep.box_hi, codes, grid_dims=prep.grid_dims)
    parts: list[PredictedConflicts] = []
    for start in range(0, len(ci), CHUNK_PAIRS):
        i = ci[start:start + CHUNK_PAIRS]
        j = cj[start:start + CHUNK_PAIRS]
        hmin, vmin = table.lookup(codes[i], codes[j])
        oi = np.empty(len(i), dtype=np.int64)
        oj = np.empty(len(i), dtype=np.int64)
        cols = np.empty((len(i), 6), dtype=np.float64)
        los = np.empty(len(i), dtype=np.bool_)
        if model == "geodesic":
            m = narrow_geodesic(prep.p, prep.up, prep.vel, state.alt_m, state.vs_mps, i, j, hmin, vmin,
                                 lookahead_s, DISTANCE_TOLERANCE_M, oi, oj, cols, los)
        else:
            m = narrow_bluesky(state.lat_deg, state.lon_deg, prep.vel, state.alt_m, state.vs_mps, i, j, hmin, vmin,
                                lookahead_s, oi, oj, cols, los)
        parts.append(PredictedConflicts(oi[:m].copy(), oj[:m].copy(), cols[:m, 0].copy(), cols[:m, 1].copy(),
                                        cols[:m, 2].copy(), cols[:m, 3].copy(), los[:m].copy(), cols[:m, 4].copy(),
                                        cols[:m, 5].copy()))
    out = PredictedConflicts.concat(parts)
    order = np.lexsort((out.j, out.i))
    return PredictedConflicts(*(getattr(out, name)[order] for name in PredictedConflicts.__dataclass_fields__))


