"""Issue 19, webhooks: receivers never wait on each other. A black-holed receiver (accepts the TCP connection,
never answers) next to a healthy one: the healthy one's deliveries arrive within 1 s at 5 notices/s, and the
black-holed one's circuit breaker opens and defers its deliveries alone. Real sockets, a real SQLite store."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from forewarn.core.model import Party
from forewarn.notify.breaker import CircuitBreaker
from forewarn.notify.worker import DeliveryWorker
from forewarn.service.desk import DeliveryDesk
from forewarn.service.notices import Forewarn
from forewarn.service.settings import Settings
from forewarn.service.tokens import IssuerKey
from forewarn.store import SQLiteRepository
from tests.builders import agreement, circle, operation


@dataclass
class BlackHole:
    """Accepts TCP connections and holds them open without ever reading or answering."""

    sock: socket.socket = field(default_factory=socket.socket)
    held: list[socket.socket] = field(default_factory=list)

    def start(self) -> str:
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        threading.Thread(target=self._accept, daemon=True).start()
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def stop(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


@dataclass
class Healthy:
    """Answers 204 at once and notes when each delivery arrived (UTC) against when it was created."""

    lags: list[float] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def start(self) -> str:
        healthy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body: dict[str, Any] = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                created = datetime.fromisoformat(body["created_at"])
                healthy.lags.append((datetime.now(UTC) - created).total_seconds())
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[tuple[str, Healthy, str]]:
    hole, healthy = BlackHole(), Healthy()
    hole_url, healthy_url = hole.start(), healthy.start()
    yield hole_url, healthy, healthy_url
    hole.stop()
    healthy.stop()


def _service(db: Path, hole_url: str, healthy_url: str, **settings: Any) -> Forewarn:
    s = Forewarn(SQLiteRepository(db), Settings(db=db, webhook_allow_http=True, webhook_allow_private=True,
                                                **settings))
    s.put_party(Party(id="usa", name="Coalition"))
    s.put_party(Party(id="rus", name="Russia", webhook_url=hole_url))
    s.put_party(Party(id="fra", name="France", webhook_url=healthy_url))
    s.put_agreement(agreement("all", ["usa", "rus", "fra"]))
    return s


def _file(service: Forewarn, count: int, rate_per_s: float) -> None:
    start = time.monotonic()
    for i in range(count):
        time.sleep(max(0.0, start + i / rate_per_s - time.monotonic()))
        now = datetime.now(UTC)
        service.notify(operation(f"op{i}", "usa", [circle(30.0 + i * 0.5, 20.0, t0=now)]), now)


@pytest.mark.slow
def test_a_black_holed_receiver_does_not_delay_a_healthy_one(tmp_path: Path,
                                                              receivers: tuple[str, Healthy, str]) -> None:
    hole_url, healthy, healthy_url = receivers
    service = _service(tmp_path / "w.sqlite", hole_url, healthy_url)
    worker = DeliveryWorker(DeliveryDesk(service), IssuerKey.generate(), lambda: datetime.now(UTC), poll_s=0.25)
    service.listeners.append(worker.wake)
    worker.start()
    try:
        _file(service, 25, 5.0)  # 5 notices/s for 5 s
        deadline = time.monotonic() + 10
        while len(healthy.lags) < 25 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop()
    assert len(healthy.lags) == 25
    assert max(healthy.lags) < 1.0, sorted(healthy.lags)


def test_the_breaker_of_a_black_holed_receiver_opens_and_defers_only_its_deliveries(
        tmp_path: Path, receivers: tuple[str, Healthy, str]) -> None:
    hole_url, healthy, healthy_url = receivers
    service = _service(tmp_path / "b.sqlite", hole_url, healthy_url, webhook_timeout_s=0.3,
                       webhook_breaker_failures=2, webhook_breaker_cooldown_s=60)
    worker = DeliveryWorker(DeliveryDesk(service), IssuerKey.generate(), lambda: datetime.now(UTC))
    _file(service, 4, 100.0)
    worker.run_once()  # two attempts at once (concurrency 2) time out, two wait in the lane's queue
    worker.run_once()  # the other two time out: the breaker is open
    lane = worker.lanes[f"http://127.0.0.1:{hole_url.split(':')[2].split('/')[0]}"]
    assert lane.breaker.is_open
    assert len(healthy.lags) == 4  # the healthy receiver got every one
    worker.run_once()
    rus = service.repo.list_deliveries("rus")
    assert all(d.delivered_at is None and d.next_attempt_at is not None for d in rus)
    now = datetime.now(UTC)
    assert service.repo.due_webhook_deliveries(now) == []  # deferred by the breaker: the due list stays clear


def test_a_breaker_backs_off_doubling_then_closes_on_success() -> None:
    b = CircuitBreaker(failures=2, cooldown_s=10, max_s=30)
    b.record(False, 0)
    assert b.allows(0)
    b.record(False, 0)
    assert not b.allows(5) and b.retry_in(5) == 5
    assert b.allows(10) and not b.allows(10)  # one half-open probe at a time
    b.record(False, 10)
    assert b.open_until == 30  # doubled
    assert b.allows(30)
    b.record(False, 30)
    assert b.open_until == 60  # capped at max_s
    assert b.allows(60)
    b.record(True, 60)
    assert not b.is_open and b.allows(60)
