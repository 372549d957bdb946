"""The track WebSocket's token (issue 20): accepted in the ``Sec-WebSocket-Protocol`` header or in the first
message instead of the query string (which still works, deprecated), and never written to the server's log: a
real ``forewarn serve`` process's uvicorn log is read back."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.websockets import WebSocketDisconnect
from websockets.sync.client import connect

from forewarn.http.log_redaction import RedactTokens, redact
from tests.api_support import World, make_world
from tests.server_support import Server, add_party
from tests.test_track_api import feeder, position


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path)
    with w.client:
        yield w


def _token(world: World) -> str:
    return feeder(world, "usa", ["tracks:feed", "read"])["Authorization"].split()[1]


def test_the_token_in_the_subprotocol_header(world: World) -> None:
    token = _token(world)
    with world.client.websocket_connect("/v1/tracks/ws", subprotocols=["forewarn.v1", f"bearer.{token}"]) as ws:
        assert ws.accepted_subprotocol == "forewarn.v1"  # never the token echoed back
        ws.send_text(json.dumps([position("w1", 0)]))
        assert ws.receive_json()["accepted"] == 1
    with pytest.raises(WebSocketDisconnect) as closed, world.client.websocket_connect(
            "/v1/tracks/ws", subprotocols=["forewarn.v1", "bearer.not-a-token"]) as ws:
        ws.receive_text()
    assert closed.value.code == 1008


def test_the_token_in_the_first_message(world: World) -> None:
    token = _token(world)
    with world.client.websocket_connect("/v1/tracks/ws") as ws:
        ws.send_text(json.dumps({"access_token": token}))
        assert ws.receive_json() == {"authenticated": True, "party_id": "usa"}
        ws.send_text(json.dumps([position("w2", 0)]))
        assert ws.receive_json()["accepted"] == 1
    read_only = world.auth("usa", "read").get("Authorization", "").split()[1]
    with pytest.raises(WebSocketDisconnect) as closed, world.client.websocket_connect("/v1/tracks/ws") as ws:
        ws.send_text(json.dumps({"access_token": read_only}))  # a valid token without tracks:feed
        ws.receive_text()
    assert closed.value.code == 1008
    assert {t["track_id"] for t in world.client.get("/v1/tracks", headers=world.auth("usa")).json()} == {"w2"}


def test_an_open_socket_closes_once_its_party_is_disabled(world: World) -> None:
    token = _token(world)
    with world.client.websocket_connect("/v1/tracks/ws", subprotocols=["forewarn.v1", f"bearer.{token}"]) as ws:
        ws.send_text(json.dumps([position("w3", 0)]))
        assert ws.receive_json()["accepted"] == 1
        world.service.disable_party("usa", world.clock.now)
        ws.send_text(json.dumps([position("w3", 1)]))
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1008


def test_redaction_of_log_records() -> None:
    assert redact("GET /v1/tracks/ws?source=a&access_token=eyJ.abc.def&x=1") == (
        "GET /v1/tracks/ws?source=a&access_token=[redacted]&x=1")
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "GET", "/v1/tracks/ws?access_token=SECRET", "1.1", 200), None)
    assert RedactTokens().filter(record) and "SECRET" not in record.getMessage()


def test_a_real_servers_log_never_holds_the_token(tmp_path: Path) -> None:
    db = tmp_path / "ws.sqlite"
    creds = add_party(db, "usa", "--scopes", "tracks:feed read")
    server = Server(db)
    server.start()
    try:
        token = server.token(creds)["Authorization"].split()[1]
        ws_url = server.url.replace("http://", "ws://") + "/v1/tracks/ws"
        with connect(f"{ws_url}?source=q&access_token={token}") as ws:  # the deprecated form still works
            ws.send(json.dumps([position("q1", 0)]))
            assert "accepted" in json.loads(ws.recv(timeout=20))
        with connect(ws_url, subprotocols=["forewarn.v1", f"bearer.{token}"]) as ws:  # type: ignore[list-item]
            ws.send(json.dumps([position("p1", 0)]))
            assert "accepted" in json.loads(ws.recv(timeout=20))
        with connect(ws_url) as ws:
            ws.send(json.dumps({"access_token": token}))
            assert json.loads(ws.recv(timeout=20))["authenticated"] is True
    finally:
        server.stop()
    log = db.with_suffix(".log").read_text(encoding="utf-8", errors="replace")
    assert "WebSocket /v1/tracks/ws?source=q&access_token=[redacted]" in log  # the line is there, redacted
    assert token not in log and token.split(".")[2] not in log
