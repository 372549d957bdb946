"""Resolutions: the least change that clears every conflict of the operation asked to adjust.

Three kinds are searched, each verified by re-running detection on the changed operation:

* time shift: every volume moved by the same number of seconds, earlier or later. Candidates are the exact
  breakpoints where a neighbour's window (widened by the time minimum) ends or begins, rounded outward to
  ``time_step_s``; the first candidate (by size) that verifies is the smallest, since conflicts can only
  appear or disappear at breakpoints. Never earlier than ``now``.
* altitude change: every band moved by the same metres, up or down, same breakpoint method, within
  [``floor_m``, ``ceiling_m``].
* lateral offset: the footprints moved geodesically along one of ``directions`` azimuths, searched outward in
  ``lateral_step_m`` rings up to ``max_lateral_m`` then refined by bisection to ``lateral_resolution_m``.
  Not proposed for activity classes fixed in place (a strike area).

When no change of a kind clears everything within bounds, the result says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np
import shapely
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict
from shapely.geometry.base import BaseGeometry

from forewarn.core.airspace import Airspace, search_box
from forewarn.core.conflicts import detect, in_time_and_band, volumes_conflict
from forewarn.core.model import FIXED_IN_PLACE_CLASSES, Operation, SeparationMinima
from forewarn.geo.volume import Volume4D


@dataclass(frozen=True)
class ResolutionBounds:
    """How far a proposal may go: time (s), altitude (m above WGS84), lateral (m), and search steps."""

    max_time_shift_s: float = 12 * 3600
    time_step_s: float = 60
    floor_m: float = 0.0
    ceiling_m: float = 20_000.0
    altitude_step_m: float = 10.0
    max_lateral_m: float = 50_000.0
    lateral_step_m: float = 2_500.0
    lateral_resolution_m: float = 100.0
    directions: int = 16


class Resolution(BaseModel):
    """One proposed change to an operation. Exactly one of the change fields is set for its kind."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["time_shift", "altitude_change", "lateral_offset"]
    operation_id: str
    time_shift_s: float | None = None
    altitude_change_m: float | None = None
    azimuth_deg: float | None = None
    distance_m: float | None = None
    verified: bool
    description: str


class ResolutionSet(BaseModel):
    """The proposals for one operation, smallest change of each kind, and what could not be found."""

    model_config = ConfigDict(frozen=True)

    operation_id: str
    conflicts_cleared: int
    options: list[Resolution]
    not_found: list[str]


def _clears(op: Operation, airspace: Airspace, now: datetime | None) -> bool:
    return not detect(op, airspace, now, measure=False)


def _neighbours(op: Operation, airspace: Airspace, widen_s: float, widen_m: float) -> list[tuple[int, str, int]]:
    """(my volume, their operation, their volume) of every stored volume that could matter after a change."""
    book = airspace.book
    largest = book.largest_for(op.party_id)
    out: list[tuple[int, str, int]] = []
    for i, a in enumerate(op.volumes):
        for key in airspace.index.query(search_box(a, largest, widen_s, widen_m)):
            theirs = airspace.operations[key[0]]
            if theirs.id != op.id and theirs.party_id != op.party_id:
                out.append((i, key[0], key[1]))
    return sorted(out)


def _breakpoints(op: Operation, airspace: Airspace, axis: Literal["time", "altitude"], widen: float, step: float,
                 ) -> tuple[list[float], list[float], list[tuple[float, float]]]:
    """Changes (s or m), rounded outward to ``step``, at which one neighbour stops conflicting along ``axis``:
    increasing positive ones and decreasing negative ones; and the open interval ``(below, above)`` of changes
    for which each such neighbour still conflicts. Only neighbours that conflict on the other axes (the
    ``axis`` minimum relaxed to infinity) give breakpoints: a change along ``axis`` leaves the other axes as
    they are, so a change strictly inside one of the intervals certainly leaves a conflict."""
    book = airspace.book
    plus: set[float] = set()
    minus: set[float] = set()
    blocked: list[tuple[float, float]] = []
    widen_s, widen_m = (widen, 0.0) if axis == "time" else (0.0, widen)
    for i, oid, j in _neighbours(op, airspace, widen_s, widen_m):
        theirs, b, shape_b = airspace.volume((oid, j))
        a = op.volumes[i]
        bound = book.minima(op.party_id, theirs.party_id, op.activity_class, theirs.activity_class)
        if bound is None:
            continue
        minima = bound[0]
        relaxed = minima.model_copy(update={"time_s": 1e12} if axis == "time" else {"vertical_m": 1e9})
        if not volumes_conflict(a, b, shape_b, relaxed):
            continue
        if axis == "time":
            above, below = b.end_s + minima.time_s - a.start_s, b.start_s - minima.time_s - a.end_s
        else:
            above, below = b.upper_m + minima.vertical_m - a.lower_m, b.lower_m - minima.vertical_m - a.upper_m
        plus.add(math.ceil(above / step) * step)
        minus.add(math.floor(below / step) * step)
        blocked.append((below, above))
    return sorted(d for d in plus if d > 0), sorted((d for d in minus if d < 0), reverse=True), blocked


BLOCKED_MARGIN = 1e-3
"""How far inside a blocked interval (s or m) a change must lie to be passed over without detection. The
interval is computed from the unshifted values, detection compares the shifted ones: at a change that makes
two half-open bands just touch, rounding (feet converted to metres, epoch seconds) can put the change a few
units in the last place inside the interval while detection finds no conflict. Such a change is verified."""


def _still_blocked(delta: float, blocked: list[tuple[float, float]]) -> bool:
    """Whether ``delta`` lies inside one of the intervals (see :func:`_breakpoints`) by more than
    :data:`BLOCKED_MARGIN`: then that neighbour certainly still conflicts."""
    return any(below + BLOCKED_MARGIN < delta < above - BLOCKED_MARGIN for below, above in blocked)


def _first_clear(op: Operation, airspace: Airspace, now: datetime | None, candidates: list[float],
                 allowed: Callable[[float], bool], change: Callable[[Volume4D, float], Volume4D],
                 blocked: list[tuple[float, float]]) -> float | None:
    """The first candidate (they grow in size) that clears every conflict, or None once one is not allowed.
    A candidate inside a neighbour's ``blocked`` interval is passed over without running detection; the others
    are verified by detection on the changed operation."""
    for delta in candidates:
        if not allowed(delta):
            return None
        if _still_blocked(delta, blocked):
            continue
        if _clears(op.model_copy(update={"volumes": [change(v, delta) for v in op.volumes]}), airspace, now):
            return delta
    return None


def _time_shift(op: Operation, airspace: Airspace, now: datetime | None, bounds: ResolutionBounds,
                ) -> tuple[list[Resolution], list[str]]:
    later, earlier, blocked = _breakpoints(op, airspace, "time", bounds.max_time_shift_s, bounds.time_step_s)
    earliest_allowed = (now.timestamp() - op.start.timestamp()) if now is not None else -math.inf

    def allowed(delta: float) -> bool:
        return abs(delta) <= bounds.max_time_shift_s and delta >= earliest_allowed

    found: list[Resolution] = []
    missing: list[str] = []
    for label, candidates in (("later", later), ("earlier", earlier)):
        hit = _first_clear(op, airspace, now, candidates, allowed, lambda v, d: v.shifted(seconds=d), blocked)
        if hit is None:
            missing.append(f"no {label} time shift within {bounds.max_time_shift_s / 3600:g} h clears every conflict")
        else:
            found.append(Resolution(
                kind="time_shift", operation_id=op.id, time_shift_s=hit, verified=True,
                description=f"move {label} by {_duration(abs(hit))}",
            ))
    return found, missing


def _altitude(op: Operation, airspace: Airspace, now: datetime | None, bounds: ResolutionBounds,
              ) -> tuple[list[Resolution], list[str]]:
    span = bounds.ceiling_m - bounds.floor_m
    up, down, blocked = _breakpoints(op, airspace, "altitude", span, bounds.altitude_step_m)
    lowest = min(v.lower_m for v in op.volumes)
    highest = max(v.upper_m for v in op.volumes)

    def allowed(delta: float) -> bool:
        return highest + delta <= bounds.ceiling_m and lowest + delta >= bounds.floor_m

    found: list[Resolution] = []
    missing: list[str] = []
    for label, candidates in (("up", up), ("down", down)):
        hit = _first_clear(op, airspace, now, candidates, allowed, lambda v, d: v.shifted(metres=d), blocked)
        if hit is None:
            missing.append(
                f"no altitude change {label} within [{bounds.floor_m:g}, {bounds.ceiling_m:g}] m clears every conflict"
            )
        else:
            found.append(Resolution(
                kind="altitude_change", operation_id=op.id, altitude_change_m=hit, verified=True,
                description=f"{'climb' if hit > 0 else 'descend'} by {abs(hit):,.0f} m ({abs(hit) / 0.3048:,.0f} ft)",
            ))
    return found, missing


def _lateral(op: Operation, airspace: Airspace, now: datetime | None, bounds: ResolutionBounds,
             ) -> tuple[list[Resolution], list[str]]:
    """Rings of ``lateral_step_m`` outward, every direction screened cheaply against the stored volumes within
    reach (their own cached buffers against the moved footprint), the first clearing ones bisected; a proposal
    is kept only once full detection on the moved operation confirms it."""
    if op.activity_class in FIXED_IN_PLACE_CLASSES:
        return [], [f"no lateral offset proposed: a {op.activity_class} stays where it is"]
    azimuths = [k * 360.0 / bounds.directions for k in range(bounds.directions)]
    book = airspace.book
    largest = book.largest_for(op.party_id)
    reach = largest.model_copy(update={"horizontal_m": largest.horizontal_m + bounds.max_lateral_m})
    partners: list[list[tuple[Volume4D, SeparationMinima]]] = []
    for a in op.volumes:
        mine: list[tuple[Volume4D, SeparationMinima]] = []
        for key in airspace.index.query(search_box(a, reach)):
            theirs = airspace.operations[key[0]]
            if theirs.id == op.id or theirs.party_id == op.party_id:
                continue
            bound = book.minima(op.party_id, theirs.party_id, op.activity_class, theirs.activity_class)
            if bound is not None:
                mine.append((theirs.volumes[key[1]], bound[0]))
        partners.append(mine)

    def moved(az: float, d: float) -> Operation:
        return op.model_copy(update={"volumes": [v.moved(az, d) for v in op.volumes]})

    # The screen, set up once: the stored volumes each of op's volumes meets in time and band (a lateral move
    # changes neither), their buffers by their horizontal minimum grouped in arrays, the degree scale at the
    # footprint's centroid and its number of coordinates.
    screens: list[tuple[BaseGeometry, float, int, NDArray[np.object_], NDArray[np.object_]]] = []
    for a, mine in zip(op.volumes, partners, strict=True):
        live = [(b, minima) for b, minima in mine if in_time_and_band(a, b, minima)]
        buffers = np.array([b.buffered(m.horizontal_m) for b, m in live if m.horizontal_m > 0], dtype=object)
        touching = np.array([b.shape for b, m in live if m.horizontal_m <= 0], dtype=object)
        lat = math.radians(a.shape.centroid.y)
        screens.append((a.shape, max(math.cos(lat), 0.05), len(shapely.get_coordinates(a.shape)), buffers,
                        touching))

    def screened_clear(moves: list[tuple[float, float]]) -> list[bool]:
        """For each (azimuth deg, distance m): whether the moved footprints stay clear of every screened volume.
        The screen translates the footprints in degrees (no geodesy): tens of metres off at 50 km, which the
        exact verification below catches; it only orders and filters the candidates. Same predicates as
        conflicts.horizontal_hits (buffer of the stored volume meets the moved footprint; h = 0: interiors
        overlap), vectorised over the stored volumes and the moves (one predicate call per footprint)."""
        clear = np.ones(len(moves), dtype=bool)
        if not moves:
            return []
        ds = np.array([d for _, d in moves])
        sin = np.array([math.sin(math.radians(az)) for az, _ in moves])
        cos = np.array([math.cos(math.radians(az)) for az, _ in moves])
        for shape, cos_lat, count, buffers, touching in screens:
            if not (buffers.size or touching.size):
                continue
            offsets = np.repeat(np.column_stack([ds * sin / (111_320.0 * cos_lat), ds * cos / 110_574.0]), count,
                                axis=0)
            copies = np.empty(len(moves), dtype=object)
            copies[:] = [shape] * len(moves)
            shifted = shapely.transform(copies, lambda c, off=offsets: c + off)[np.newaxis, :]
            if buffers.size:
                clear &= ~shapely.intersects(buffers[:, np.newaxis], shifted).any(axis=0)
            if touching.size:
                column = touching[:, np.newaxis]
                clear &= ~(shapely.intersects(column, shifted) & ~shapely.touches(column, shifted)).any(axis=0)
        return [bool(x) for x in clear]

    distance = bounds.lateral_step_m
    while distance <= bounds.max_lateral_m + 1e-9:
        ring = screened_clear([(az, distance) for az in azimuths])
        # every direction clear on this ring bisected back towards the previous ring, all in step
        bracket = {az: (distance - bounds.lateral_step_m, distance) for az, ok in zip(azimuths, ring, strict=True)
                   if ok}
        while active := [az for az, (lo, hi) in bracket.items() if hi - lo > bounds.lateral_resolution_m]:
            mids = [(az, (bracket[az][0] + bracket[az][1]) / 2) for az in active]
            for (az, mid), ok in zip(mids, screened_clear(mids), strict=True):
                lo, hi = bracket[az]
                bracket[az] = (lo, mid) if ok else (mid, hi)
        candidates = [(math.ceil(hi / bounds.lateral_resolution_m) * bounds.lateral_resolution_m, az)
                      for az, (_, hi) in bracket.items()]
        for d0, az in sorted(candidates):
            # the screen is approximate: confirm exactly, allowing a few resolution steps more
            steps = [d0 + k * bounds.lateral_resolution_m for k in range(4)]
            d = next((x for x in steps if x <= bounds.max_lateral_m and _clears(moved(az, x), airspace, now)), None)
            if d is not None:
                return [Resolution(
                    kind="lateral_offset", operation_id=op.id, azimuth_deg=az, distance_m=d, verified=True,
                    description=f"move {d / 1000:.1f} km towards {_compass(az)} ({az:.1f} deg true)",
                )], []
        distance += bounds.lateral_step_m
    return [], [f"no lateral offset up to {bounds.max_lateral_m / 1000:g} km clears every conflict"]


def propose(
    op: Operation, airspace: Airspace, now: datetime | None = None, bounds: ResolutionBounds | None = None
) -> ResolutionSet:
    """The smallest time shift (each way), altitude change (each way) and lateral offset clearing all of
    ``op``'s conflicts with the live operations in ``airspace`` (``op`` itself is ignored there)."""
    bounds = bounds or ResolutionBounds()
    conflicts = detect(op, airspace, now, measure=False)
    if not conflicts:
        return ResolutionSet(operation_id=op.id, conflicts_cleared=0, options=[], not_found=[])
    options: list[Resolution] = []
    missing: list[str] = []
    for search in (_time_shift, _altitude, _lateral):
        got, lacking = search(op, airspace, now, bounds)
        options.extend(got)
        missing.extend(lacking)
    return ResolutionSet(operation_id=op.id, conflicts_cleared=len(conflicts), options=options, not_found=missing)


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def _compass(azimuth: float) -> str:
    points = ["N", "NNE", "NE", "ENE", "E", "ESE", "SE", "SSE", "S", "SSW", "SW", "WSW", "W", "WNW", "NW", "NNW"]
    return points[round((azimuth % 360) / 22.5) % 16]
