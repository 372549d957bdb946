"""Domain records: parties, agreements, operations, protected sites, conflicts and warnings.

Units: distances and altitudes in metres (altitudes above the WGS84 ellipsoid), durations in seconds,
times timezone-aware UTC. There is no "target" field anywhere: Forewarn never needs to know *why*.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from forewarn.core.ids import ACTIVITY_CLASS_PATTERN, check_identifier
from forewarn.core.text import PrintableText
from forewarn.geo.volume import LonLat, Volume4D, check_lonlat
from forewarn.units import FOOT_M, NAUTICAL_MILE_M, feet_to_m, nm_to_m

STRIKE_CLASSES = frozenset({"strike_area", "cruise_missile_corridor", "artillery_area"})
"""Activity classes whose volumes are checked against protected sites."""

FIXED_IN_PLACE_CLASSES = frozenset({"strike_area"})
"""Activity classes for which a lateral offset is never proposed: the place is the point of the activity."""


class Record(BaseModel):
    """Base for domain records: immutable, unknown fields rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Party(Record):
    """An organisation that files and receives notices."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "un-ocha", "name": "UN OCHA Syria", "kind": "humanitarian",
        "webhook_url": "https://ocha.example.org/forewarn", "backup_webhook_url": "https://ocha.example.org/duty",
    }]})

    id: str
    name: PrintableText = Field(min_length=1, max_length=200)
    kind: Literal["military", "humanitarian", "civil", "other"] = "military"
    webhook_url: str | None = Field(default=None, pattern=r"^https?://[^\s]{1,2000}$",
                                    description="primary webhook for deliveries (besides the event stream)")
    backup_webhook_url: str | None = Field(default=None, pattern=r"^https?://[^\s]{1,2000}$",
                                           description="backup channel for escalations (e.g. a duty officer)")

    _id = field_validator("id")(check_identifier)


class SeparationMinima(Record):
    """Separation minima between two volumes: horizontal (m), vertical (m) and time (s).

    Two volumes conflict when they come closer than *all three* at once, under the boundary rule of
    :mod:`forewarn.units` (``gap < minimum - tolerance``: 1 cm for distances, 1 ms for times), so a separation
    equal to the minimum is never a loss. Minima may be given in the agreement's own units, converted exactly:
    ``horizontal_nm`` (1 NM = 1,852 m) for ``horizontal_m``, ``vertical_ft`` (1 ft = 0.3048 m: 1,000 ft is
    304.8 m) for ``vertical_m``.
    """

    horizontal_m: float = Field(ge=0, le=500_000, allow_inf_nan=False)
    vertical_m: float = Field(ge=0, le=20_000, allow_inf_nan=False)
    time_s: float = Field(ge=0, le=86_400 * 7, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _units(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for key_m, key_other, factor in (("horizontal_m", "horizontal_nm", NAUTICAL_MILE_M),
                                             ("vertical_m", "vertical_ft", FOOT_M)):
                if key_other in data:
                    if key_m in data:
                        raise ValueError(f"give {key_m} or {key_other}, not both")
                    value = data.pop(key_other)
                    if isinstance(value, bool) or not isinstance(value, (int, float)):
                        raise ValueError(f"{key_other} must be a number, got {value!r}")
                    data[key_m] = float(value) * factor
        return data

    def merged(self, other: SeparationMinima) -> SeparationMinima:
        """The stricter of two minima, field by field."""
        return SeparationMinima(
            horizontal_m=max(self.horizontal_m, other.horizontal_m),
            vertical_m=max(self.vertical_m, other.vertical_m),
            time_s=max(self.time_s, other.time_s),
        )


ZERO_MINIMA = SeparationMinima(horizontal_m=0, vertical_m=0, time_s=0)


class ClassPairMinima(SeparationMinima):
    """Minima that apply between two activity classes (order does not matter; ``*`` matches any class)."""

    classes: tuple[str, str]


class PriorityRule(Record):
    """Which side of a conflict is asked to adjust (both sides are always told).

    ``first_notified``: the operation notified first holds the airspace; the later one adjusts.
    ``class_ranking``: the class listed earlier in ``ranking`` holds; classes not listed rank last;
    equal ranks fall back to ``first_notified``.
    """

    rule: Literal["first_notified", "class_ranking"] = "first_notified"
    ranking: list[str] = Field(default_factory=list)


class Channel(Record):
    """A delivery channel: a named stream or endpoint of a party (used by the service layer)."""

    kind: Literal["stream", "webhook", "phone", "email"] = "stream"
    address: str = ""


class SharingLevel(StrEnum):
    """What each side of an agreement may see of the other's operations."""

    SAFETY_ENVELOPE = "safety_envelope"
    PLANNING_DETAIL = "planning_detail"


PLANNING_DETAIL_FIELDS = ("purpose", "unit", "call_signs", "notes")
"""The fields of :class:`PlanningDetail`: what an agreement's ``released_fields`` may name."""

ALTITUDE_STEP_LIMIT_FT = 10_000.0
TIME_STEP_LIMIT_S = 86_400.0
GRID_LIMIT_ARCMIN = 300.0
GRID_MIN_ARCMIN = 0.05
"""Finest grid: 0.05 arc-minute (3 arc-seconds, about 90 m of latitude)."""


class Coarsening(Record):
    """How an agreement coarsens the safety envelope of some of its parties' operations for the other parties.

    * ``grid_arcmin``: footprints are rounded outward to a longitude/latitude grid (WGS84 degrees, planar in
      lon/lat) of this many arc-minutes: the union of the grid cells the footprint meets, holes filled. The
      grid must divide 5 degrees (300 arc-minutes) evenly, so the equator, +/-85 deg, +/-90 deg and +/-180 deg
      are grid lines (e.g. 0.5, 1, 2, 3, 5, 6, 10, 15, 30, 60 arc-minutes).
    * ``convex_hull``: footprints are replaced by their convex hull (applied before the grid when both are set).
    * ``altitude_step_ft``: altitude bands rounded outward to multiples of this many feet (1 ft = 0.3048 m,
      heights above the WGS84 ellipsoid as everywhere in Forewarn).
    * ``time_step_s``: windows rounded outward to multiples of this many seconds since the Unix epoch (UTC),
      e.g. 900 s: quarter hours.
    * ``of``: the parties whose operations are coarsened for the others; empty means every party of the
      agreement.

    Detection always uses the exact volumes; what the other side is shown of them (and of conflicts with
    them) is derived from the coarsened ones. When several agreements bind two parties, the coarsest setting
    of those that coarsen the owner applies, attribute by attribute (see :meth:`merged`).
    """

    of: list[str] = Field(default_factory=list,
                          description="parties whose operations are coarsened for the others (empty: every party)")
    grid_arcmin: float | None = Field(default=None, ge=GRID_MIN_ARCMIN, le=GRID_LIMIT_ARCMIN, allow_inf_nan=False,
                                      description="outward lon/lat grid in arc-minutes; must divide 300 evenly")
    convex_hull: bool = Field(default=False, description="replace footprints by their convex hull")
    altitude_step_ft: float = Field(default=0.0, ge=0, le=ALTITUDE_STEP_LIMIT_FT, allow_inf_nan=False,
                                    description="altitude bands rounded outward to multiples of this (feet); 0: exact")
    time_step_s: float = Field(default=0.0, ge=0, le=TIME_STEP_LIMIT_S, allow_inf_nan=False,
                               description="windows rounded outward to multiples of this (seconds, UTC); 0: exact")

    @field_validator("of")
    @classmethod
    def _parties(cls, parties: list[str]) -> list[str]:
        for p in parties:
            check_identifier(p)
        return parties

    @field_validator("grid_arcmin")
    @classmethod
    def _divides(cls, grid: float | None) -> float | None:
        if grid is not None:
            cells = GRID_LIMIT_ARCMIN / grid
            if abs(cells - round(cells)) > 1e-9:
                raise ValueError(f"grid_arcmin {grid} must divide 300 arc-minutes (5 degrees) evenly")
        return grid

    @model_validator(mode="after")
    def _changes_something(self) -> Coarsening:
        if self.grid_arcmin is None and not self.convex_hull and not self.altitude_step_ft and not self.time_step_s:
            raise ValueError("a coarsening sets at least one of grid_arcmin, convex_hull, altitude_step_ft, "
                             "time_step_s")
        return self

    def applies_to(self, owner: str) -> bool:
        """Whether ``owner``'s operations are coarsened (for the other parties of the agreement)."""
        return not self.of or owner in self.of

    def merged(self, other: Coarsening) -> Coarsening:
        """The coarser of two settings, attribute by attribute (``of`` is not carried over)."""
        grids = [g for g in (self.grid_arcmin, other.grid_arcmin) if g is not None]
        return Coarsening(
            grid_arcmin=max(grids) if grids else None, convex_hull=self.convex_hull or other.convex_hull,
            altitude_step_ft=max(self.altitude_step_ft, other.altitude_step_ft),
            time_step_s=max(self.time_step_s, other.time_step_s),
        )


class Agreement(Record):
    """The protocol between two or more parties (e.g. the coalition-Russia MoU of 20 Oct 2015)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "mou-syria", "name": "Coalition-Russia air safety MoU", "parties": ["coalition", "russia"],
        "min_notice_s": 3600, "ack_deadline_s": 900,
        "default_minima": {"horizontal_m": 9260, "vertical_m": 304.8, "time_s": 600},
        "priority": {"rule": "first_notified"}, "sharing": "safety_envelope",
    }]})

    id: str
    name: PrintableText = Field(min_length=1, max_length=200)
    parties: list[str] = Field(min_length=2)
    min_notice_s: float = Field(default=3600, ge=0, le=30 * 86_400, allow_inf_nan=False)
    ack_deadline_s: float = Field(default=900, gt=0, le=30 * 86_400, allow_inf_nan=False)
    default_minima: SeparationMinima = SeparationMinima(horizontal_m=nm_to_m(5), vertical_m=feet_to_m(1000), time_s=600)
    class_minima: list[ClassPairMinima] = Field(default_factory=list)
    priority: PriorityRule = PriorityRule()
    sharing: SharingLevel = SharingLevel.SAFETY_ENVELOPE
    released_fields: dict[str, list[str]] = Field(
        default_factory=dict,
        description="planning-detail field -> parties it is released to (REL TO), for planning_detail sharing",
    )
    primary_channel: Channel = Channel()
    backup_channel: Channel | None = None
    deliver: Literal["all", "affected_or_subscribed"] = Field(
        default="all",
        description="which notices the other parties receive: all of them, or only those that affect them "
        "(a conflict or a site warning) or meet one of their subscriptions (as ASTM F3548 USSs do)",
    )
    coarsening: Coarsening | None = Field(
        default=None,
        description="coarsen the safety envelope of (some of) the parties' operations for the others: outward "
        "lon/lat grid (arc-minutes) or convex hull, altitudes (ft) and times (s) rounded outward",
    )

    _id = field_validator("id")(check_identifier)

    @field_validator("parties")
    @classmethod
    def _distinct(cls, parties: list[str]) -> list[str]:
        for p in parties:
            check_identifier(p)
        if len(set(parties)) != len(parties):
            raise ValueError("an agreement lists each party once")
        return parties

    @model_validator(mode="after")
    def _releases_and_coarsening(self) -> Agreement:
        for name, partners in self.released_fields.items():
            if name not in PLANNING_DETAIL_FIELDS:
                raise ValueError(f"released_fields: {name!r} is not a planning-detail field "
                                 f"({', '.join(PLANNING_DETAIL_FIELDS)})")
            strangers = [p for p in partners if p not in self.parties]
            if strangers:
                raise ValueError(f"released_fields.{name}: {', '.join(strangers)} not parties to this agreement")
        if self.released_fields and self.sharing != SharingLevel.PLANNING_DETAIL:
            raise ValueError("released_fields needs sharing: planning_detail")
        if self.coarsening is not None:
            strangers = [p for p in self.coarsening.of if p not in self.parties]
            if strangers:
                raise ValueError(f"coarsening.of: {', '.join(strangers)} not parties to this agreement")
        return self

    def binds(self, a: str, b: str) -> bool:
        """Whether this agreement binds both parties ``a`` and ``b`` (a != b)."""
        return a != b and a in self.parties and b in self.parties

    def minima_for(self, class_a: str, class_b: str) -> SeparationMinima:
        """The minima between two activity classes: the most specific class pair, else the default."""
        best: tuple[int, SeparationMinima] | None = None
        for entry in self.class_minima:
            x, y = entry.classes
            for p, q in ((x, y), (y, x)):
                if p in (class_a, "*") and q in (class_b, "*"):
                    score = (p != "*") + (q != "*")
                    if best is None or score > best[0]:
                        best = (score, SeparationMinima(
                            horizontal_m=entry.horizontal_m, vertical_m=entry.vertical_m, time_s=entry.time_s
                        ))
        return best[1] if best else self.default_minima

    def largest_minima(self) -> SeparationMinima:
        """The largest minima this agreement can require, for index prefilters."""
        out = self.default_minima
        for entry in self.class_minima:
            out = out.merged(entry)
        return out


class OperationState(StrEnum):
    """Life cycle: planned -> notified -> active -> completed, or cancelled from any live state."""

    PLANNED = "planned"
    NOTIFIED = "notified"
    ACTIVE = "active"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


LIVE_STATES = frozenset({OperationState.NOTIFIED, OperationState.ACTIVE})
"""States whose latest version takes part in conflict detection."""

TRANSITIONS: dict[OperationState, frozenset[OperationState]] = {
    OperationState.PLANNED: frozenset({OperationState.NOTIFIED, OperationState.CANCELLED}),
    OperationState.NOTIFIED: frozenset({OperationState.ACTIVE, OperationState.CANCELLED}),
    OperationState.ACTIVE: frozenset({OperationState.COMPLETED, OperationState.CANCELLED}),
    OperationState.COMPLETED: frozenset(),
    OperationState.CANCELLED: frozenset(),
}


class PlanningDetail(Record):
    """What is not safety information: released field by field only to named partners."""

    purpose: str | None = Field(default=None, max_length=2000)
    unit: str | None = Field(default=None, max_length=200)
    call_signs: list[str] = Field(default_factory=list)
    notes: str | None = Field(default=None, max_length=4000)


class Operation(Record):
    """A party's planned activity, one version of it: one or more volumes of one activity class."""

    id: str
    party_id: str
    activity_class: str = Field(pattern=ACTIVITY_CLASS_PATTERN)
    volumes: list[Volume4D] = Field(min_length=1, max_length=100)
    state: OperationState = OperationState.PLANNED
    version: int = Field(default=1, ge=1)
    notified_at: datetime | None = None
    detail: PlanningDetail = PlanningDetail()

    _id = field_validator("id", "party_id")(check_identifier)

    @field_validator("notified_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("notified_at must be timezone-aware (UTC)")
        return value.astimezone(UTC) if value is not None else None

    @property
    def start(self) -> datetime:
        """Earliest start of its volumes (UTC)."""
        return min(v.start for v in self.volumes)

    @property
    def end(self) -> datetime:
        """Latest end of its volumes (UTC)."""
        return max(v.end for v in self.volumes)


class ProtectedSite(Record):
    """A place that must not be struck (hospital, school, shelter, convoy route), with a buffer in metres.

    ``point`` is (lon, lat) WGS84; ``polygon`` an exterior ring of (lon, lat); exactly one is given.
    """

    id: str
    name: PrintableText = Field(min_length=1, max_length=200)
    category: Literal["hospital", "school", "shelter", "convoy_route", "camp", "aid_depot", "other"] = "other"
    registered_by: str
    point: LonLat | None = None
    polygon: list[LonLat] | None = None
    buffer_m: float = Field(default=1000.0, ge=0, le=100_000, allow_inf_nan=False)

    _id = field_validator("id", "registered_by")(check_identifier)

    @model_validator(mode="after")
    def _one_geometry(self) -> ProtectedSite:
        if (self.point is None) == (self.polygon is None):
            raise ValueError("a protected site has exactly one of point or polygon")
        if self.point is not None:
            check_lonlat(self.point)
        if self.polygon is not None:
            from forewarn.geo.volume import PolygonFootprint

            PolygonFootprint(coordinates=self.polygon)
        return self


class Subscription(Record):
    """A party's standing interest in an area x altitude band x time window (like an ASTM F3548 subscription):
    every notice whose volumes meet it is delivered to the party, whatever the agreements say."""

    id: str
    party_id: str
    volume: Volume4D

    _id = field_validator("id", "party_id")(check_identifier)
