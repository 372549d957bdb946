"""Helpers for API tests: an app on a real SQLite file with a settable clock, parties and tokens."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from forewarn.core.credentials import new_credential
from forewarn.core.model import Agreement, Party, SeparationMinima
from forewarn.http.app import create_app
from forewarn.http.submissions import address
from forewarn.service.notices import Forewarn
from forewarn.service.settings import Settings
from forewarn.store import SQLiteRepository
from tests.conftest import T0


@dataclass
class Clock:
    now: datetime = T0 - timedelta(hours=3)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    client: TestClient
    service: Forewarn
    clock: Clock
    secrets: dict[str, tuple[str, str]] = field(default_factory=dict)

    def token(self, party: str, scope: str | None = None) -> str:
        client_id, secret = self.secrets[party]
        data = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
        if scope:
            data["scope"] = scope
        response = self.client.post("/v1/token", data=data)
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    def auth(self, party: str, scope: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(party, scope)}"}


def volume(lon: float, lat: float, radius_m: float = 5000, start_h: float = 1, end_h: float = 3) -> dict[str, Any]:
    return {"footprint": {"kind": "circle", "center": [lon, lat], "radius_m": radius_m}, "lower_m": 1000,
            "upper_m": 5000, "start": (T0 + timedelta(hours=start_h)).isoformat(),
            "end": (T0 + timedelta(hours=end_h)).isoformat()}


def make_world(tmp: Path, run_worker: bool = False, **parties_extra: dict[str, Any]) -> World:
    db = tmp / "api.sqlite"
    settings = Settings(db=db)
    service = Forewarn(SQLiteRepository(db), settings, addresses=address)
    clock = Clock()
    world = World(client=TestClient(create_app(settings, service=service, clock=clock, run_worker=run_worker)),
                  service=service, clock=clock)
    for pid in ("usa", "rus", "fra", "loner", "admin"):
        service.put_party(Party(id=pid, name=pid.upper(), **parties_extra.get(pid, {})))
        scopes = ["admin"] if pid == "admin" else ["notices:file", "read", "ack", "sites:register", "keys:manage"]
        cred, secret = new_credential(pid, scopes, clock.now)
        with service.repo.transaction():
            service.repo.put_credential(cred)
        world.secrets[pid] = (cred.client_id, secret)
    minima = SeparationMinima(horizontal_m=9260, vertical_m=305, time_s=600)
    service.put_agreement(Agreement(id="mou", name="MoU", parties=["usa", "rus", "fra"], default_minima=minima,
                                    ack_deadline_s=900, min_notice_s=3600))
    service.put_agreement(Agreement(id="usa-fra", name="sharing", parties=["usa", "fra"], default_minima=minima,
                                    sharing="planning_detail", released_fields={"purpose": ["fra"]}))
    return world
