"""A real ``forewarn serve`` in a subprocess, parties created with the real CLI, and a webhook receiver."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

DEV_WEBHOOKS = {"FOREWARN_WEBHOOK_ALLOW_HTTP": "true", "FOREWARN_WEBHOOK_ALLOW_PRIVATE": "true"}
"""The settings the loopback receivers of these tests need (http://127.0.0.1): the defaults refuse both."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cli(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "forewarn", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **DEV_WEBHOOKS})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def add_party(db: Path, party_id: str, *extra: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(cli("party", "add", party_id, "--name", party_id.upper(), "--db", str(db), *extra))
    return doc


def sse_events(url: str, headers: dict[str, str], count: int, timeout: float = 20) -> list[dict[str, Any]]:
    """Read ``count`` events from a server-sent event stream."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    with httpx.stream("GET", url, headers=headers, timeout=timeout) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("id: "):
                current["id"] = int(line[4:])
            elif line.startswith("data: "):
                current["data"] = json.loads(line[6:])
            elif line == "" and "id" in current:
                events.append(current)
                current = {}
                if len(events) >= count:
                    break
    return events


@dataclass
class Server:
    db: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log: Any = None
    args: tuple[str, ...] = ()
    """More arguments of ``forewarn serve`` (e.g. ``("--scenario", "raqqa-2015")``)."""
    start_timeout_s: float = 30.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, env: dict[str, str] | None = None) -> None:
        self.log = open(self.db.with_suffix(".log"), "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "forewarn", "serve", *self.args, "--db", str(self.db), "--port", str(self.port)],
            stdout=self.log, stderr=self.log, env={**os.environ, **DEV_WEBHOOKS, **(env or {})},
        )
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not start: {self.db.with_suffix('.log').read_text()[-2000:]}")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._close_log()

    def _close_log(self) -> None:
        if self.log is not None:
            self.log.close()
            self.log = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._close_log()

    def token(self, creds: dict[str, Any]) -> dict[str, str]:
        r = httpx.post(f"{self.url}/v1/token", data={"grant_type": "client_credentials",
                                                     "client_id": creds["client_id"],
                                                     "client_secret": creds["client_secret"]})
        r.raise_for_status()
        return {"Authorization": f"Bearer {r.json()['access_token']}"}


@contextmanager
def running(db: Path, env: dict[str, str] | None = None) -> Iterator[Server]:
    server = Server(db)
    server.start(env)
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Receiver:
    """A webhook receiver on loopback: records every complete request; fails the first ``fail_first`` of them.

    A request cut off before its whole body arrived (the server was killed while sending) is discarded, as a real
    receiver would: its delivery id does not count as received.
    """

    fail_first: int = 0
    received: list[tuple[str, bytes, str]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    """The headers of each recorded request, in the order of ``received``."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                # A sender killed mid-request (kill -9) leaves headers cut short (EOF ends the header block, so
                # Content-Length may be missing) or a body cut short: a real receiver discards such a request.
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                if length == 0 or len(body) < length:
                    self.close_connection = True
                    return
                with receiver.lock:
                    receiver.received.append((self.headers.get("Forewarn-Delivery-Id", ""), body,
                                              self.headers.get("Forewarn-Signature", "")))
                    receiver.headers.append(dict(self.headers.items()))
                    failing = len(receiver.received) <= receiver.fail_first
                self.send_response(500 if failing else 204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def ids(self) -> set[str]:
        with self.lock:
            return {r[0] for r in self.received}
