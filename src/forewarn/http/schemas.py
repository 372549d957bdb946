"""Request bodies of the HTTP API (responses are the domain records themselves)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field

from forewarn.core.ids import ACTIVITY_CLASS_PATTERN, ID_PATTERN, ID_RULE
from forewarn.core.model import PlanningDetail
from forewarn.core.scopes import DEFAULT_SCOPES, Scope
from forewarn.core.text import PrintableText
from forewarn.geo.volume import LonLat, Volume4D

IdPath = Annotated[str, Path(pattern=ID_PATTERN, description=f"an identifier ({ID_RULE})")]
"""An id in a URL path (operation, party, site, subscription, delivery): :data:`forewarn.core.ids.ID_PATTERN`."""

PartyQuery = Annotated[str | None, Query(pattern=ID_PATTERN, description=f"a party id ({ID_RULE})")]
"""An optional party id in the query string."""


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Request body examples (shown in the OpenAPI schema and /docs; tests/test_docs.py posts each one and expects it
# accepted). They are dated on 17 Nov 2015, the built-in scenario's day, near Raqqa: the service rejects windows
# that ended before its clock, so on a live service move the dates to within the next 30 days.
EXAMPLE_VOLUME: dict[str, Any] = {
    "footprint": {"kind": "circle", "center": [39.05, 35.95], "radius_m": 15000},
    "lower_m": 6000, "upper_m": 8000, "start": "2015-11-17T06:00:00Z", "end": "2015-11-17T09:00:00Z",
}
EXAMPLE_CORRIDOR: dict[str, Any] = {
    "footprint": {"kind": "corridor", "path": [[38.6, 36.3], [39.0, 35.95], [39.4, 35.6]], "half_width_m": 5000},
    "lower_fl": 250, "upper_fl": 310, "start": "2015-11-17T07:00:00Z", "end": "2015-11-17T08:00:00Z",
}
EXAMPLE_AREA: dict[str, Any] = {
    "footprint": {"kind": "polygon", "coordinates": [[38.8, 35.8], [39.3, 35.8], [39.3, 36.1], [38.8, 36.1]]},
    "lower_m": 0, "upper_m": 15000, "start": "2015-11-17T00:00:00Z", "end": "2015-11-17T23:00:00Z",
}


def _example(**body: Any) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": [body]})


class OperationIn(_Body):
    """A notice to file: the operation's id (yours to choose), activity class, volumes and planning detail."""

    model_config = _example(
        id="co-isr-1", activity_class="isr_orbit", volumes=[EXAMPLE_VOLUME],
        detail={"purpose": "ISR orbit east of Raqqa", "unit": "ISR squadron", "call_signs": ["HAWK 11"],
                "notes": None},
    )

    id: str | None = Field(default=None, pattern=ID_PATTERN,
                           description="omit it and the service chooses one no other party can guess or take first "
                           "(op- and 32 hex digits; a signed filing names its id)")
    activity_class: str = Field(pattern=ACTIVITY_CLASS_PATTERN)
    volumes: list[Volume4D] = Field(min_length=1, max_length=100)
    detail: PlanningDetail = PlanningDetail()


class CheckIn(_Body):
    """A what-if check: like a notice, nothing is stored."""

    model_config = _example(id="what-if", activity_class="bomber_route", volumes=[EXAMPLE_CORRIDOR])

    id: str = Field(default="what-if", pattern=ID_PATTERN)
    activity_class: str = Field(pattern=ACTIVITY_CLASS_PATTERN)
    volumes: list[Volume4D] = Field(min_length=1, max_length=100)


class AmendIn(_Body):
    """An amendment: the version being amended, and what changes."""

    model_config = _example(version=1, volumes=[{**EXAMPLE_VOLUME, "lower_m": 9000, "upper_m": 10000}])

    version: int = Field(ge=1)
    volumes: list[Volume4D] | None = Field(default=None, min_length=1, max_length=100)
    activity_class: str | None = Field(default=None, pattern=ACTIVITY_CLASS_PATTERN)
    detail: PlanningDetail | None = None


class SiteIn(_Body):
    """A protected site registered by the calling party."""

    model_config = _example(id="field-hospital-1", name="Field hospital", category="hospital",
                            point=[39.01, 35.96], buffer_m=1000)

    id: str = Field(pattern=ID_PATTERN)
    name: PrintableText = Field(min_length=1, max_length=200)
    category: Literal["hospital", "school", "shelter", "convoy_route", "camp", "aid_depot", "other"] = "other"
    point: LonLat | None = None
    polygon: list[LonLat] | None = None
    buffer_m: float = Field(default=1000.0, ge=0, le=100_000, allow_inf_nan=False)


class SubscriptionIn(_Body):
    """An area x altitude band x window of interest of the calling party."""

    model_config = _example(id="raqqa-watch", volume=EXAMPLE_AREA)

    id: str = Field(pattern=ID_PATTERN)
    volume: Volume4D




class CredentialsIn(_Body):
    """Scopes for new client credentials."""

    model_config = _example(scopes=["notices:file", "read", "ack", "sites:register"])

    scopes: list[Scope] = Field(default_factory=lambda: list(DEFAULT_SCOPES), min_length=1)


class CredentialsOut(BaseModel):
    """New client credentials: the secret is shown once and stored only hashed."""

    client_id: str
    client_secret: str
    party_id: str
    scopes: list[str]


class TokenOut(BaseModel):
    """An OAuth2 bearer token."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    scope: str
