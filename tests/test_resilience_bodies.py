"""Issue 19, request bodies: a size limit per route, enforced while the body streams in (an ASGI middleware), on
every route: a declared Content-Length over it is refused before any of the body is read, a chunked body as soon
as it crosses the limit. Real sockets against a real uvicorn server for the streaming cases."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from forewarn.http.app import create_app
from forewarn.http.limits import BodyLimits
from forewarn.service.settings import Settings
from tests.server_support import free_port


@contextmanager
def _serving(app: Any) -> Iterator[int]:
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    try:
        while not server.started:
            time.sleep(0.05)
        yield port
    finally:
        server.should_exit = True


def _status(sock: socket.socket) -> tuple[int, bytes]:
    sock.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return int(data.split(b" ", 2)[1]), data


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(tmp_path: Path) -> None:
    app = create_app(Settings(db=tmp_path / "b.sqlite"), run_worker=False)
    with _serving(app) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST /v1/operations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1073741824\r\n\r\n" + b"[" * 1024)  # announces 1 GiB, sends 1 KiB
        status, data = _status(sock)
    assert status == 413, data
    body = json.loads(data.split(b"\r\n\r\n", 1)[1] or b"{}") if data.endswith(b"}") else {}
    assert not body or body["error"]["code"] == "payload_too_large"


def test_a_chunked_body_is_cut_off_once_it_crosses_the_limit(tmp_path: Path) -> None:
    app = create_app(Settings(db=tmp_path / "c.sqlite", body_limit_bytes=65_536), run_worker=False)
    sent = 0
    with _serving(app) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        piece = b"[" * 16_384
        sock.settimeout(0.2)
        status, data = 0, b""
        while sent < 64 * 1_048_576:  # would be 64 MiB
            try:
                sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                sent += len(piece)
            except OSError:  # the server answered and closed
                break
            try:
                peek = sock.recv(65536, socket.MSG_PEEK)
            except TimeoutError:
                continue
            if peek:
                break
        status, data = _status(sock)
    assert status == 413, data
    assert sent < 8 * 1_048_576  # refused long before the whole body was sent


def test_every_route_with_a_body_has_its_limit(tmp_path: Path) -> None:
    settings = Settings(db=tmp_path / "e.sqlite", body_limit_bytes=2048, body_limit_tracks_bytes=4096)
    app = create_app(settings, run_worker=False)
    client = TestClient(app)
    checked = 0
    for template, operations in app.openapi()["paths"].items():
        path = template.replace("{", "").replace("}", "")
        limit = 4096 if path.startswith("/v1/tracks/") else 2048
        for method in {m.upper() for m in operations} & {"POST", "PUT", "PATCH", "DELETE"}:
            over = client.request(method, path, content=b" " * (limit + 1),
                                  headers={"Content-Type": "application/json"})
            assert over.status_code == 413, (method, path, over.status_code)
            assert over.json()["error"]["code"] == "payload_too_large"
            under = client.request(method, path, content=b" " * limit, headers={"Content-Type": "application/json"})
            assert under.status_code != 413, (method, path)
            checked += 1
    assert checked >= 15


@pytest.mark.parametrize(("path", "limit"), [("/v1/tracks/positions", 50), ("/v1/operations", 10),
                                             ("/v1/trackspositions", 10)])
def test_the_longest_prefix_wins(path: str, limit: int) -> None:
    assert BodyLimits(10, (("/v1/tracks/", 50),)).for_path(path) == limit
