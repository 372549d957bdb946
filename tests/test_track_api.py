"""The live-track API over HTTP and WebSocket: feeding, validation, visibility, alerts in the inbox."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.websockets import WebSocketDisconnect

from forewarn.core.credentials import new_credential
from tests.api_support import World, make_world, volume
from tests.conftest import T0

START_S = T0.timestamp() + 3600.0


def feeder(world: World, party: str, scopes: list[str]) -> dict[str, str]:
    cred, secret = new_credential(party, scopes, world.clock.now)
    with world.service.repo.transaction():
        world.service.repo.put_credential(cred)
    world.secrets[f"{party}:{'+'.join(scopes)}"] = (cred.client_id, secret)
    return world.auth(f"{party}:{'+'.join(scopes)}")


def position(track: str, k: int, lon0: float = 37.0, lat: float = 35.0, **extra: Any) -> dict[str, Any]:
    return {"track_id": track, "t_s": START_S + 10 * k, "lat_deg": lat, "lon_deg": lon0 + 0.0274 * k,
            "alt_m": 2000.0, "gs_mps": 250.0, "track_deg": 90.0, "vs_mps": 0.0, "callsign": track.upper()} | extra


@pytest.fixture()
def world(tmp_path: Path) -> World:
    return make_world(tmp_path)


def test_batch_feed_accepts_good_rows_and_names_bad_ones(world: World) -> None:
    headers = feeder(world, "usa", ["tracks:feed", "read"])
    rows = [position("u1", 0), position("u1", 1, lat=95.0), position("u1", 2)]
    r = world.client.post("/v1/tracks/positions?source=radar-1", json=rows, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["received"], body["accepted"]) == (3, 2)
    assert body["rejected"] == [{"index": 1, "reason": "lat_out_of_range"}]
    # JSON lines, one of them garbage and one with an ISO time: the garbage line is named by its line number
    lines = "\n".join([json.dumps(position("u2", 0)), "{not json", json.dumps(
        {k: v for k, v in position("u2", 1).items() if k != "t_s"} | {"time": "2015-11-17T01:00:10Z"})])
    r = world.client.post("/v1/tracks/positions", content=lines.encode(),
                          headers=headers | {"Content-Type": "application/x-ndjson"})
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 2 and [x["index"] for x in r.json()["rejected"]] == [1]
    tracks = world.client.get("/v1/tracks", headers=headers).json()
    assert {(t["track_id"], t["position"]["t_s"]) for t in tracks} == {("u1", START_S + 20), ("u2", START_S + 10)}
    quality = world.client.get("/v1/tracks/quality", headers=headers).json()
    assert quality["usa/radar-1"]["rejected"] == 1 and quality["usa/api"]["accepted"] == 2


def test_refusals_store_nothing(world: World) -> None:
    feed = feeder(world, "usa", ["tracks:feed", "read"])
    reader = feeder(world, "fra", ["read"])
    rows = [position("u1", 0)]
    assert world.client.post("/v1/tracks/positions", json=rows).status_code == 401
    r = world.client.post("/v1/tracks/positions", json=rows, headers=reader)
    assert r.status_code == 403 and r.json()["error"]["details"] == {"required_scope": "tracks:feed"}
    op = world.client.post("/v1/operations", headers=world.auth("rus"), json={
        "id": "rus-op", "activity_class": "bomber_route", "volumes": [volume(37.5, 35.0)]})
    assert op.status_code == 201, op.text
    r = world.client.post("/v1/tracks/positions?operation_id=rus-op", json=rows, headers=feed)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert world.client.post("/v1/tracks/positions?operation_id=nope", json=rows, headers=feed).status_code == 404
    r = world.client.post("/v1/tracks/positions?source=bad%20name", json=rows, headers=feed)
    assert r.status_code == 422 and "request_id" in r.json()["error"]
    assert world.client.get("/v1/tracks", headers=feed).json() == []
    assert world.service.repo._conn.execute("SELECT count(*) FROM track_chunks").fetchone() == (0,)  # type: ignore[attr-defined]


def test_visibility_and_alerts_follow_agreements(world: World) -> None:
    op = world.client.post("/v1/operations", headers=world.auth("rus"), json={
        "id": "rus-op", "activity_class": "bomber_route", "volumes": [volume(37.5, 35.0, 5000)]})
    assert op.status_code == 201, op.text
    world.clock.now = T0 + timedelta(hours=1)
    usa = feeder(world, "usa", ["tracks:feed", "read"])
    loner = feeder(world, "loner", ["tracks:feed", "read"])
    # usa flies east through rus's notified circle (37.5 E, 5 km); loner flies the same line (no agreement)
    for k in range(24):
        for headers, track in ((usa, "u1"), (loner, "l1")):
            r = world.client.post("/v1/tracks/positions", json=[position(track, k, lat=35.0 if track == "u1"
                                                                          else 35.001)], headers=headers)
            assert r.status_code == 200, r.text
    rus_inbox = world.client.get("/v1/inbox", headers=world.auth("rus")).json()
    alerts = [d["payload"]["alert"] for d in rus_inbox if d["payload"].get("type") == "alert"]
    assert [(a["kind"], a["party_id"]) for a in alerts if a["kind"] != "cleared"] == [
        ("predicted_entry", "usa"), ("intrusion", "usa")]
    assert all(a["party_id"] != "loner" for a in alerts)
    assert {t["party_id"] for t in world.client.get("/v1/tracks", headers=world.auth("rus")).json()} == {"usa"}
    assert {t["party_id"] for t in world.client.get("/v1/tracks", headers=loner).json()} == {"loner"}
    loner_inbox = world.client.get("/v1/inbox", headers=loner).json()
    assert all("rus" not in json.dumps(d["payload"]) for d in loner_inbox)


def test_websocket_feed(world: World) -> None:
    headers = feeder(world, "usa", ["tracks:feed", "read"])
    token = headers["Authorization"].split()[1]
    with world.client.websocket_connect(f"/v1/tracks/ws?source=ws-1&access_token={token}") as ws:
        ws.send_text(json.dumps([position("w1", 0), position("w1", 1)]))
        first = ws.receive_json()
        assert (first["accepted"], first["rejected"]) == (2, [])
        ws.send_text("[{broken")
        second = ws.receive_json()
        assert second["accepted"] == 0 and second["rejected"][0]["index"] == 0
        ws.send_text(json.dumps(position("w1", 2)))  # still open after a bad message
        assert ws.receive_json()["accepted"] == 1
    assert {t["track_id"] for t in world.client.get("/v1/tracks", headers=headers).json()} == {"w1"}
    with pytest.raises(WebSocketDisconnect) as closed, world.client.websocket_connect("/v1/tracks/ws") as ws:
        ws.send_text("{}")  # opened without a token, and the first message holds none
        ws.receive_text()
    assert closed.value.code == 1008
