"""Scenario files: parties, agreements, protected sites and operations in one YAML or JSON document.

Schema (see ``examples/scenario.yaml`` and docs/data-model.md):

* ``name``, ``description``, ``clock_start`` (UTC; the time at which sites and planned operations are loaded)
* ``parties``: list of :class:`~forewarn.core.model.Party`
* ``agreements``: list of :class:`~forewarn.core.model.Agreement`
* ``protected_sites``: list of :class:`~forewarn.core.model.ProtectedSite`
* ``operations``: list of operations with ``id``, ``party_id``, ``activity_class``, ``volumes``, ``detail`` and
  an optional ``notify_at`` (UTC): with it the operation is notified at that time (in time order), without it
  it is stored as planned.

Loading is idempotent: records already stored with the same content are left alone, so loading the same
file twice neither duplicates nor fails. An operation stored with *different* content is an error (amend it).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from forewarn.core.model import Agreement, Operation, Party, PlanningDetail, ProtectedSite
from forewarn.core.records import NoticeOutcome
from forewarn.errors import InvalidInput, validation_errors
from forewarn.geo.volume import Volume4D
from forewarn.service.notices import Forewarn

BUILTIN = {"raqqa-2015": "raqqa-2015.yaml"}
"""Built-in scenarios shipped in ``forewarn/scenarios``."""


class ScenarioOperation(BaseModel):
    """An operation in a scenario file; ``notify_at`` (UTC) files its notice at that time."""

    model_config = ConfigDict(extra="forbid")

    id: str
    party_id: str
    activity_class: str
    volumes: list[Volume4D]
    detail: PlanningDetail = PlanningDetail()
    notify_at: datetime | None = None

    @field_validator("notify_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("notify_at must be timezone-aware (UTC)")
        return value.astimezone(UTC) if value is not None else None

    def operation(self) -> Operation:
        return Operation(id=self.id, party_id=self.party_id, activity_class=self.activity_class,
                         volumes=self.volumes, detail=self.detail)


class Scenario(BaseModel):
    """A whole scenario file."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    clock_start: datetime
    parties: list[Party] = Field(default_factory=list)
    agreements: list[Agreement] = Field(default_factory=list)
    protected_sites: list[ProtectedSite] = Field(default_factory=list)
    operations: list[ScenarioOperation] = Field(default_factory=list)

    @field_validator("clock_start")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("clock_start must be timezone-aware (UTC)")
        return value.astimezone(UTC)


class LoadStep(BaseModel):
    """One thing loading did: what, which record, the status and, for a notice, its outcome."""

    kind: Literal["party", "agreement", "site", "plan", "notice"]
    id: str
    status: Literal["created", "unchanged", "updated"]
    at: datetime
    outcome: NoticeOutcome | None = None


def read_scenario(path: str | Path) -> Scenario:
    """Parse a scenario file (``.yaml``/``.yml`` or ``.json``); errors name the file and the field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read scenario {path}: {exc.strerror}") from exc
    return parse_scenario(text, str(path), json_only=path.suffix.lower() == ".json")


def parse_scenario(text: str, source: str = "<scenario>", json_only: bool = False) -> Scenario:
    try:
        data: Any = json.loads(text) if json_only else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"{source}: not valid {'JSON' if json_only else 'YAML'}: {exc}") from exc
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(f"{source}: invalid scenario", {"errors": validation_errors(exc)}) from exc


def builtin_scenario(name: str) -> Scenario:
    """A built-in scenario by name (see :data:`BUILTIN`)."""
    if name not in BUILTIN:
        raise InvalidInput(f"no built-in scenario {name!r}; choose from {', '.join(sorted(BUILTIN))}")
    text = (resources.files("forewarn.scenarios") / BUILTIN[name]).read_text(encoding="utf-8")
    return parse_scenario(text, f"built-in scenario {name}")


def _same_operation(stored: Operation, wanted: Operation) -> bool:
    keys = ("party_id", "activity_class", "volumes", "detail")
    return all(getattr(stored, k) == getattr(wanted, k) for k in keys)


def load_scenario(service: Forewarn, scenario: Scenario) -> list[LoadStep]:
    """Load a scenario into the service, idempotently; returns what was done, notices in time order."""
    repo = service.repo
    t0 = scenario.clock_start
    steps: list[LoadStep] = []
    Kind = Literal["party", "agreement", "site"]  # noqa: N806 - a local type alias
    reference: list[tuple[Kind, Party | Agreement | ProtectedSite, Callable[[str], Any], Callable[[Any], None]]] = [
        *(("party", p, repo.get_party, service.put_party) for p in scenario.parties),
        *(("agreement", a, repo.get_agreement, lambda r: service.put_agreement(r, t0)) for a in scenario.agreements),
        *(("site", s, repo.get_site, lambda r: service.register_site(r, t0)) for s in scenario.protected_sites),
    ]
    for kind, record, get, put in reference:
        old = get(record.id)
        if old != record:
            put(record)
        status: Literal["created", "unchanged", "updated"] = (
            "unchanged" if old == record else "updated" if old is not None else "created"
        )
        steps.append(LoadStep(kind=kind, id=record.id, at=t0, status=status))
    timed = sorted(scenario.operations, key=lambda o: (o.notify_at or t0, o.id))
    for item in timed:
        wanted = item.operation()
        stored = repo.get_operation(item.id)
        first = repo.operation_versions(item.id)[0] if stored is not None else None
        if first is not None:
            if not _same_operation(first, wanted):
                raise InvalidInput(
                    f"operation {item.id} is already stored with different content; amend it instead",
                    {"operation_id": item.id},
                )
            notices = [n for n in repo.list_notices(item.id) if n.kind == "notify"]
            steps.append(LoadStep(kind="notice" if notices else "plan", id=item.id, status="unchanged",
                                  at=notices[0].at if notices else t0,
                                  outcome=notices[0].outcome if notices else None))
            continue
        if item.notify_at is None:
            service.plan(wanted, t0)
            steps.append(LoadStep(kind="plan", id=item.id, status="created", at=t0))
        else:
            outcome = service.notify(wanted, item.notify_at)
            steps.append(LoadStep(kind="notice", id=item.id, status="created", at=item.notify_at, outcome=outcome))
    return steps
