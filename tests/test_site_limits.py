"""Resource limits of protected sites and subscriptions (issue 20: one 100,000-vertex site with a 100 km buffer made
every filing take 81 s; 231 subscriptions of a party bound to nobody slowed filings from 4 ms to 2.4 s): the volume
limits apply to both, counts are capped per party, a refusal stores nothing, a site's buffer is computed once per
version, and the subscriptions of parties no agreement binds to the filer are never read."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from forewarn.core import sites as core_sites
from forewarn.core.model import ProtectedSite, Subscription
from forewarn.geo import geodesy
from forewarn.service.settings import Settings
from tests.api_support import World, make_world, volume
from tests.builders import circle, operation
from tests.test_api import assert_error


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = make_world(tmp_path)
    w.service.settings = Settings(db=tmp_path / "api.sqlite", max_vertices=500, max_area_km2=10_000,
                                  max_sites_per_party=2, max_subscriptions_per_party=2)
    return w


def ring(n: int, lon: float = 38.0, lat: float = 35.0, radius_deg: float = 0.1) -> list[list[float]]:
    return [[lon + radius_deg * math.cos(2 * math.pi * k / n), lat + radius_deg * math.sin(2 * math.pi * k / n)]
            for k in range(n)]


def site(site_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": site_id, "name": "Hospital", "category": "hospital", "point": [38.0, 35.0], "buffer_m": 500} | extra


def test_sites_obey_the_volume_limits_and_a_per_party_count(world: World) -> None:
    c, fra = world.client, world.auth("fra")
    ledger = world.service.repo.ledger_head()
    too_many = site("big", point=None, polygon=ring(501))
    body = assert_error(c.post("/v1/sites", headers=fra, json=too_many), 422, "invalid_input")
    assert body["details"]["vertices"] == 501 and body["details"]["limit"] == 500
    too_wide = site("wide", point=None, polygon=ring(40, radius_deg=1.0))  # about 38,000 km2
    assert assert_error(c.post("/v1/sites", headers=fra, json=too_wide), 422, "invalid_input")["details"]["limit_km2"]
    assert world.service.repo.list_sites() == [] and world.service.repo.ledger_head() == ledger  # nothing stored
    assert c.post("/v1/sites", headers=fra, json=site("s1")).status_code == 201
    assert c.post("/v1/sites", headers=fra, json=site("s2", point=None, polygon=ring(500))).status_code == 201
    third = assert_error(c.post("/v1/sites", headers=fra, json=site("s3")), 409, "limit_reached")
    assert third["details"] == {"held": 2, "limit": 2}
    assert c.post("/v1/sites", headers=fra, json=site("s1", buffer_m=900)).status_code == 201  # a replacement
    assert sorted(s.id for s in world.service.repo.list_sites()) == ["s1", "s2"]
    assert c.post("/v1/sites", headers=world.auth("usa"), json=site("u1")).status_code == 201  # per party


def test_subscriptions_obey_the_volume_limits_the_horizon_and_a_per_party_count(world: World) -> None:
    c, fra = world.client, world.auth("fra")
    poly = {"kind": "polygon", "coordinates": ring(501)}
    big = {"id": "b", "volume": volume(38, 35) | {"footprint": poly}}
    assert assert_error(c.post("/v1/subscriptions", headers=fra, json=big), 422, "invalid_input")["details"][
        "vertices"] == 501
    wide = {"id": "w", "volume": volume(38, 35, radius_m=80_000)}  # about 20,000 km2
    assert_error(c.post("/v1/subscriptions", headers=fra, json=wide), 422, "invalid_input")
    late = {"id": "l", "volume": volume(38, 35, start_h=1, end_h=24 * 40)}  # beyond the 30-day horizon
    assert "horizon_end" in assert_error(c.post("/v1/subscriptions", headers=fra, json=late), 422,
                                         "invalid_input")["details"]
    assert c.get("/v1/subscriptions", headers=fra).json() == []
    for k in (1, 2):
        created = c.post("/v1/subscriptions", headers=fra, json={"id": f"s{k}", "volume": volume(38, 35)})
        assert created.status_code == 201
    assert_error(c.post("/v1/subscriptions", headers=fra, json={"id": "s3", "volume": volume(38, 35)}), 409,
                 "limit_reached")
    assert c.post("/v1/subscriptions", headers=fra, json={"id": "s2", "volume": volume(39, 35)}).status_code == 201
    assert [s["id"] for s in c.get("/v1/subscriptions", headers=fra).json()] == ["s1", "s2"]


def test_a_sites_buffer_is_computed_once_per_version(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[float] = []
    real = geodesy.geodesic_buffer

    def counting(shape: Any, distance_m: float) -> Any:
        calls.append(distance_m)
        return real(shape, distance_m)

    monkeypatch.setattr(core_sites.geodesy, "geodesic_buffer", counting)
    svc, now = world.service, world.clock.now
    svc.register_site(ProtectedSite(id="h9", name="H", registered_by="fra", point=(38.01, 35.01),
                                    buffer_m=1234.5), now)
    for k in range(3):
        out = svc.notify(operation(f"rus-{k}", "rus", [circle(38.0, 35.0, 3000)], cls="strike_area"),
                         now + timedelta(seconds=k))
        assert [w.site_id for w in out.site_warnings] == ["h9"]
    assert calls.count(1234.5) == 1
    svc.register_site(ProtectedSite(id="h9", name="H", registered_by="fra", point=(38.01, 35.01),
                                    buffer_m=2345.5), now)  # a new version: computed again, once
    svc.notify(operation("rus-9", "rus", [circle(38.0, 35.0, 3000)], cls="strike_area"), now)
    svc.notify(operation("rus-10", "rus", [circle(38.0, 35.0, 3000)], cls="strike_area"), now)
    assert calls.count(2345.5) == 1


def test_subscriptions_of_unbound_parties_are_never_read(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    svc, now = world.service, world.clock.now
    svc.put_subscription(Subscription(id="lonely", party_id="loner", volume=circle(38.0, 35.0, 20_000)), now)
    asked: list[str | None] = []
    real = svc.repo.list_subscriptions

    def spy(party_id: str | None = None) -> Any:
        asked.append(party_id)
        return real(party_id)

    monkeypatch.setattr(svc.repo, "list_subscriptions", spy)
    svc.notify(operation("usa-1", "usa", [circle(38.0, 35.0, 3000)]), now)
    assert asked and None not in asked and "loner" not in asked
    assert [d.party_id for d in svc.repo.list_deliveries() if d.notice_id is not None] == ["fra", "rus"]
