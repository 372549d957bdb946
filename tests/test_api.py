"""The HTTP API in-process: authentication, scopes, use cases, visibility, idempotency, the error shape."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.api_support import World, make_world, volume


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path)


def assert_error(response: object, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body = response.json()["error"]  # type: ignore[attr-defined]
    assert set(body) == {"code", "message", "details", "request_id"} and body["code"] == code and body["message"]
    assert body["request_id"] == response.headers["X-Request-ID"]  # type: ignore[attr-defined]
    return body  # type: ignore[no-any-return]


def test_token_flow_and_authentication_failures(world: World) -> None:
    c = world.client
    assert_error(c.get("/v1/operations"), 401, "unauthenticated")
    assert_error(c.get("/v1/operations", headers={"Authorization": "Bearer nonsense"}), 401, "unauthenticated")
    client_id, _ = world.secrets["usa"]
    bad = c.post("/v1/token", data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": "x"})
    assert_error(bad, 401, "unauthenticated")
    assert_error(c.post("/v1/token", data={"grant_type": "password", "client_id": client_id, "client_secret": "x"}),
                 422, "invalid_input")
    # a token for more scopes than granted is refused
    secret = world.secrets["usa"][1]
    assert_error(c.post("/v1/token", data={"grant_type": "client_credentials", "client_id": client_id,
                                           "client_secret": secret, "scope": "admin"}), 401, "unauthenticated")
    headers = world.auth("usa")
    assert c.get("/v1/operations", headers=headers).status_code == 200
    world.clock.now += timedelta(hours=2)  # past the one-hour token lifetime
    assert_error(c.get("/v1/operations", headers=headers), 401, "unauthenticated")


def test_forged_tokens_are_refused(world: World) -> None:
    rt = world.client.app.state.runtime  # type: ignore[attr-defined]
    claims = {"iss": "forewarn", "aud": "forewarn-api", "sub": "usa", "scope": "admin",
              "exp": int((world.clock.now + timedelta(hours=1)).timestamp())}
    forged = jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": rt.key.kid})
    assert_error(world.client.get("/v1/parties", headers={"Authorization": f"Bearer {forged}"}), 401,
                 "unauthenticated")
    wrong_aud = jwt.encode(claims | {"aud": "someone-else"}, rt.key.private, algorithm="EdDSA",
                           headers={"kid": rt.key.kid})
    assert_error(world.client.get("/v1/parties", headers={"Authorization": f"Bearer {wrong_aud}"}), 401,
                 "unauthenticated")
    ghost = jwt.encode(claims | {"sub": "ghost"}, rt.key.private, algorithm="EdDSA", headers={"kid": rt.key.kid})
    assert_error(world.client.get("/v1/parties", headers={"Authorization": f"Bearer {ghost}"}), 401,
                 "unauthenticated")
    keys = world.client.get("/v1/keys").json()["keys"]
    assert [k["kid"] for k in keys] == [rt.key.kid] and "d" not in keys[0]  # public only


def test_scopes_and_admin_only_endpoints(world: World) -> None:
    c = world.client
    usa_read = world.auth("usa", "read")
    assert_error(c.post("/v1/operations", headers=usa_read, json={"id": "a", "activity_class": "transport",
                                                                  "volumes": [volume(38, 35)]}), 403, "forbidden")
    assert_error(c.post("/v1/parties", headers=world.auth("usa"), json={"id": "new", "name": "New"}), 403, "forbidden")
    admin = world.auth("admin")
    assert c.post("/v1/parties", headers=admin, json={"id": "new", "name": "New"}).status_code == 201
    cred = c.post("/v1/parties/new/credentials", headers=admin, json={"scopes": ["read"]})
    assert cred.status_code == 201 and cred.json()["scopes"] == ["read"]
    assert_error(c.post("/v1/parties/ghost/credentials", headers=admin, json={}), 404, "not_found")
    bad_agreement = {"id": "x", "name": "x", "parties": ["usa", "ghost"]}
    assert_error(c.post("/v1/agreements", headers=admin, json=bad_agreement), 422, "invalid_input")
    assert [a["id"] for a in c.get("/v1/agreements", headers=world.auth("rus")).json()] == ["mou"]


def test_file_amend_cancel_and_ownership(world: World) -> None:
    c = world.client
    usa, rus = world.auth("usa"), world.auth("rus")
    filed = c.post("/v1/operations", headers=usa, json={"id": "usa-1", "activity_class": "transport",
                                                        "volumes": [volume(38, 35)], "detail": {"purpose": "lift"}})
    assert filed.status_code == 201 and filed.json()["version"] == 1
    conflict = c.post("/v1/operations", headers=rus, json={"id": "rus-1", "activity_class": "strike_area",
                                                           "volumes": [volume(38.05, 35)]}).json()
    assert [x["b"]["operation_id"] for x in conflict["conflicts"]] == ["usa-1"]
    assert_error(c.post("/v1/operations/usa-1/cancel", headers=rus), 404, "not_found")  # hidden like missing
    amended = c.post("/v1/operations/usa-1/amend", headers=usa, json={"version": 1, "volumes": [volume(40, 35)]})
    assert amended.status_code == 200 and amended.json()["version"] == 2
    stale = assert_error(c.post("/v1/operations/usa-1/amend", headers=usa,
                                json={"version": 1, "volumes": [volume(41, 35)]}), 409, "stale_version")
    assert stale["details"] == {"current_version": 2}
    assert_error(c.post("/v1/operations/nope/cancel", headers=usa), 404, "not_found")
    assert c.post("/v1/operations/usa-1/activate", headers=usa).status_code == 200
    assert c.post("/v1/operations/usa-1/complete", headers=usa).status_code == 200
    assert_error(c.post("/v1/operations/usa-1/cancel", headers=usa), 409, "invalid_transition")


def test_visibility_through_the_policy(world: World) -> None:
    c = world.client
    c.post("/v1/operations", headers=world.auth("usa"), json={
        "id": "usa-1", "activity_class": "transport", "volumes": [volume(38, 35)],
        "detail": {"purpose": "lift", "unit": "secret unit", "call_signs": ["X1"]}})
    as_fra = c.get("/v1/operations/usa-1", headers=world.auth("fra")).json()
    as_rus = c.get("/v1/operations/usa-1", headers=world.auth("rus")).json()
    assert as_fra["detail"] == {"purpose": "lift"} and "detail" not in as_rus
    assert as_rus["volumes"] == as_fra["volumes"]
    assert_error(c.get("/v1/operations/usa-1", headers=world.auth("loner")), 404, "not_found")
    assert c.get("/v1/operations", headers=world.auth("loner")).json() == []
    own = c.get("/v1/operations/usa-1", headers=world.auth("usa")).json()
    assert own["detail"]["unit"] == "secret unit"


def test_list_filters(world: World) -> None:
    c = world.client
    usa = world.auth("usa")
    c.post("/v1/operations", headers=usa, json={"id": "near", "activity_class": "transport",
                                                "volumes": [volume(38, 35, start_h=1, end_h=2)]})
    c.post("/v1/operations", headers=usa, json={"id": "far", "activity_class": "transport",
                                                "volumes": [volume(45, 30, start_h=5, end_h=6)]})

    def ids(**params: str) -> list[str]:
        return [o["id"] for o in c.get("/v1/operations", headers=usa, params=params).json()]

    assert ids() == ["far", "near"]
    assert ids(bbox="37,34,39,36") == ["near"]
    assert ids(start="2015-11-17T04:00:00Z") == ["far"]
    assert ids(end="2015-11-17T03:00:00Z") == ["near"]
    assert ids(state="cancelled") == []
    assert_error(c.get("/v1/operations", headers=usa, params={"bbox": "1,2,3"}), 422, "invalid_input")
    assert_error(c.get("/v1/operations", headers=usa, params={"state": "flying"}), 422, "invalid_input")


def test_idempotency_key_returns_the_first_result(world: World) -> None:
    c = world.client
    usa = world.auth("usa") | {"Idempotency-Key": "k-1"}
    body = {"id": "usa-1", "activity_class": "transport", "volumes": [volume(38, 35)]}
    first = c.post("/v1/operations", headers=usa, json=body)
    again = c.post("/v1/operations", headers=usa, json=body)
    assert first.status_code == 201 and again.status_code == 201 and again.json() == first.json()
    assert len(world.service.repo.list_notices()) == 1
    assert len(world.service.repo.list_deliveries()) == 2
    other = c.post("/v1/operations", headers=usa, json=body | {"id": "usa-2"})
    assert_error(other, 422, "invalid_input")
    assert world.service.repo.get_operation("usa-2") is None


MALFORMED = {
    "self-intersecting": {"footprint": {"kind": "polygon", "coordinates": [[38, 35], [39, 36], [39, 35], [38, 36]]}},
    "NaN": {"footprint": {"kind": "circle", "center": ["NaN", 35], "radius_m": 1000}},
    "huge": {"footprint": {"kind": "circle", "center": [38, 35], "radius_m": 900_000}},
    "inverted band": {"lower_m": 5000, "upper_m": 1000},
    "inverted window": {"start": "2015-11-17T05:00:00Z", "end": "2015-11-17T04:00:00Z"},
    "naive time": {"start": "2015-11-17T01:00:00"},
    "beyond horizon": {"start": "2016-11-17T01:00:00Z", "end": "2016-11-17T02:00:00Z"},
    "crosses antimeridian": {"footprint": {"kind": "circle", "center": [179.99, 35], "radius_m": 5000}},
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_volumes_are_rejected_and_nothing_is_stored(world: World, name: str) -> None:
    bad = volume(38, 35) | MALFORMED[name]
    response = world.client.post("/v1/operations", headers=world.auth("usa"),
                                 json={"id": "bad", "activity_class": "transport", "volumes": [bad]})
    body = assert_error(response, 422, "invalid_input")
    assert body["details"] or body["message"]
    assert world.service.repo.list_operations() == [] and world.service.repo.list_deliveries() == []


def test_check_stores_nothing(world: World) -> None:
    c = world.client
    c.post("/v1/operations", headers=world.auth("rus"), json={"id": "rus-1", "activity_class": "strike_area",
                                                              "volumes": [volume(38, 35)]})
    before = (world.service.repo.list_notices(), world.service.repo.list_deliveries())
    out = c.post("/v1/check", headers=world.auth("usa"), json={"activity_class": "transport",
                                                               "volumes": [volume(38.02, 35)]})
    assert out.status_code == 200 and out.json()["notice_id"] is None
    assert [x["b"]["operation_id"] for x in out.json()["conflicts"]] == ["rus-1"]
    assert out.json()["resolutions"][0]["options"]
    assert (world.service.repo.list_notices(), world.service.repo.list_deliveries()) == before


def test_inbox_ack_sites_and_subscriptions(world: World) -> None:
    c = world.client
    c.post("/v1/operations", headers=world.auth("usa"), json={"id": "usa-1", "activity_class": "transport",
                                                              "volumes": [volume(38, 35)]})
    fra = world.auth("fra")
    [delivery] = c.get("/v1/inbox", headers=fra).json()
    assert delivery["payload"]["operation"]["id"] == "usa-1" and delivery["acked_at"] is None
    assert_error(c.post(f"/v1/deliveries/{delivery['id']}/ack", headers=world.auth("rus")), 404, "not_found")
    acked = c.post(f"/v1/deliveries/{delivery['id']}/ack", headers=fra).json()
    assert acked["acked_at"] is not None
    assert c.get("/v1/inbox", headers=fra, params={"after": delivery["seq"]}).json() == []
    site = {"id": "h1", "name": "Hospital", "category": "hospital", "point": [38.0, 35.0], "buffer_m": 500}
    assert c.post("/v1/sites", headers=fra, json=site).json()["registered_by"] == "fra"
    assert_error(c.post("/v1/sites", headers=world.auth("rus"), json=site), 404, "not_found")  # not theirs
    assert [s["id"] for s in c.get("/v1/sites", headers=world.auth("usa")).json()] == ["h1"]
    assert c.get("/v1/sites", headers=world.auth("loner")).json() == []
    sub = {"id": "s1", "volume": volume(38, 35, 20_000)}
    assert c.post("/v1/subscriptions", headers=fra, json=sub).status_code == 201
    assert [s["id"] for s in c.get("/v1/subscriptions", headers=fra).json()] == ["s1"]
    assert_error(c.delete("/v1/subscriptions/s1", headers=world.auth("rus")), 404, "not_found")
    assert c.delete("/v1/subscriptions/s1", headers=fra).status_code == 204


def test_openapi_and_docs_are_served(world: World) -> None:
    schema = world.client.get("/openapi.json").json()
    assert "/v1/operations" in schema["paths"] and "/v1/stream" in schema["paths"]
    assert world.client.get("/docs").status_code == 200
    assert_error(world.client.get("/v1/no-such-thing"), 404, "not_found")
    assert_error(world.client.put("/v1/operations"), 405, "method_not_allowed")


def test_settings_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from forewarn.service.settings import Settings

    env_file = tmp_path / "forewarn.env"
    env_file.write_text("FOREWARN_PORT=9123\nFOREWARN_TOKEN_TTL_S=600\n")
    assert Settings(_env_file=env_file).port == 9123  # type: ignore[call-arg]
    monkeypatch.setenv("FOREWARN_PORT", "9200")
    both = Settings(_env_file=env_file)  # type: ignore[call-arg]
    assert both.port == 9200 and both.token_ttl_s == 600  # the environment beats the file
    monkeypatch.setenv("FOREWARN_PORT", "not-a-port")
    with pytest.raises(ValueError, match="port"):
        Settings()
