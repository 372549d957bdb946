"""Request bodies of the HTTP API (responses are the domain records themselves)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from forewarn.core.model import PlanningDetail
from forewarn.geo.volume import LonLat, Volume4D


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OperationIn(_Body):
    """A notice to file: the operation's id (yours to choose), activity class, volumes and planning detail."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.:-]{0,63}$")
    activity_class: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    volumes: list[Volume4D] = Field(min_length=1, max_length=100)
    detail: PlanningDetail = PlanningDetail()


class CheckIn(_Body):
    """A what-if check: like a notice, nothing is stored."""

    id: str = Field(default="what-if", pattern=r"^[a-z0-9][a-z0-9_.:-]{0,63}$")
    activity_class: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    volumes: list[Volume4D] = Field(min_length=1, max_length=100)


class AmendIn(_Body):
    """An amendment: the version being amended, and what changes."""

    version: int = Field(ge=1)
    volumes: list[Volume4D] | None = Field(default=None, min_length=1, max_length=100)
    activity_class: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]{0,63}$")
    detail: PlanningDetail | None = None


class SiteIn(_Body):
    """A protected site registered by the calling party."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.:-]{0,63}$")
    name: str = Field(min_length=1, max_length=200)
    category: Literal["hospital", "school", "shelter", "convoy_route", "camp", "aid_depot", "other"] = "other"
    point: LonLat | None = None
    polygon: list[LonLat] | None = None
    buffer_m: float = Field(default=1000.0, ge=0, le=100_000, allow_inf_nan=False)


class SubscriptionIn(_Body):
    """An area x altitude band x window of interest of the calling party."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.:-]{0,63}$")
    volume: Volume4D


Scope = Literal["notices:file", "read", "ack", "sites:register", "tracks:feed", "admin"]
DEFAULT: tuple[Scope, ...] = ("notices:file", "read", "ack", "tracks:feed")


class CredentialsIn(_Body):
    """Scopes for new client credentials."""

    scopes: list[Scope] = Field(default_factory=lambda: list(DEFAULT), min_length=1)


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
