"""Issue 19, webhook URLs: https:// by default, no loopback, link-local or private targets unless allowed, the
address resolved once and pinned for the request (Host keeps the name), no redirects by default. Checked at
registration (a refused party is a 422 and nothing is stored) and at send."""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from forewarn.core.model import Party
from forewarn.errors import InvalidInput
from forewarn.notify.worker import DeliveryWorker
from forewarn.service.desk import DeliveryDesk
from forewarn.service.notices import Forewarn
from forewarn.service.settings import Settings
from forewarn.service.tokens import IssuerKey
from forewarn.service.webhook_urls import WebhookPolicy, check_webhook_url, pin
from forewarn.store import SQLiteRepository
from tests.api_support import make_world
from tests.builders import agreement, circle, operation

STRICT = WebhookPolicy()
DEV = WebhookPolicy(allow_http=True, allow_private=True)


@pytest.mark.parametrize("url", [
    "http://hooks.example.org/x",            # http:// without the setting
    "ftp://hooks.example.org/x",             # not http(s)
    "https://127.0.0.1/x", "https://[::1]/x", "https://localhost/x", "https://a.localhost/x",  # loopback
    "https://169.254.169.254/latest/meta-data", "https://[fe80::1]/x",  # link-local (cloud metadata)
    "https://10.1.2.3/x", "https://192.168.0.1/x", "https://172.16.0.1/x", "https://[fd00::1]/x",  # private
    "https://0.0.0.0/x", "https://224.0.0.1/x", "https://[::ffff:127.0.0.1]/x",  # unspecified, multicast, mapped
    "https://user:pw@hooks.example.org/x", "https://hooks.example.org:99999/x",
])
def test_refused_at_registration_by_default(url: str) -> None:
    with pytest.raises(InvalidInput):
        check_webhook_url(url, STRICT)


def test_allowed_by_default_and_by_the_settings() -> None:
    check_webhook_url("https://hooks.example.org/forewarn", STRICT)
    check_webhook_url("https://93.184.216.34:8443/x", STRICT)
    check_webhook_url("http://127.0.0.1:9/hook", DEV)
    with pytest.raises(InvalidInput):  # http allowed, private still refused
        check_webhook_url("http://127.0.0.1:9/hook", WebhookPolicy(allow_http=True))


def test_a_name_resolving_to_any_internal_address_is_refused_and_the_first_address_pinned() -> None:
    with pytest.raises(InvalidInput, match="private"):
        pin("https://hooks.example.org/x", STRICT, ["93.184.216.34", "10.0.0.5"])
    target = pin("https://hooks.example.org:8443/x?a=1", STRICT, ["93.184.216.34", "93.184.216.35"])
    assert target.address == ipaddress.ip_address("93.184.216.34")
    assert target.pinned_url() == "https://93.184.216.34:8443/x?a=1"
    assert target.host_header() == "hooks.example.org:8443"
    v6 = pin("https://hooks.example.org/x", STRICT, ["2606:2800:220:1:248:1893:25c8:1946"])
    assert v6.pinned_url() == "https://[2606:2800:220:1:248:1893:25c8:1946]:443/x" and v6.host_header() == \
        "hooks.example.org"


def test_the_api_refuses_such_a_party_and_stores_nothing(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    for url in ("http://hooks.example.org/x", "https://169.254.169.254/x", "https://10.0.0.1/x"):
        r = world.client.post("/v1/parties", headers=world.auth("admin"),
                              json={"id": "evil", "name": "Evil", "webhook_url": url})
        assert r.status_code == 422, r.text
        assert world.service.repo.get_party("evil") is None
    r = world.client.post("/v1/parties", headers=world.auth("admin"),
                          json={"id": "good", "name": "Good", "backup_webhook_url": "https://hooks.example.org/x"})
    assert r.status_code == 201


class _Recorder:
    """A loopback receiver: answers ``status`` (with ``Location`` when it is a redirect) on /first, 204
    elsewhere; records (path, Host header)."""

    def __init__(self, status: int = 204) -> None:
        self.seen: list[tuple[str, str]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                recorder.seen.append((self.path, self.headers.get("Host", "")))
                code = status if self.path == "/first" else 204
                self.send_response(code)
                if 300 <= code < 400:
                    self.send_header("Location", "/second")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def recorder307() -> Iterator[_Recorder]:
    rec = _Recorder(307)
    yield rec
    rec.server.shutdown()
    rec.server.server_close()


def _send_one(tmp_path: Path, url: str, registered: Settings, sending: Settings) -> Forewarn:
    """Register rus with ``url`` under ``registered``, file one notice, run one worker pass under ``sending``."""
    db = tmp_path / "u.sqlite"
    service = Forewarn(SQLiteRepository(db), registered)
    service.put_party(Party(id="usa", name="Coalition"))
    service.put_party(Party(id="rus", name="Russia", webhook_url=url))
    service.put_agreement(agreement("mou", ["usa", "rus"]))
    now = datetime.now(UTC)
    service.notify(operation("op", "usa", [circle(30.0, 20.0, t0=now)]), now)
    service.settings = sending
    worker = DeliveryWorker(DeliveryDesk(service), IssuerKey.generate(), lambda: datetime.now(UTC))
    worker.run_once()
    return service


def test_a_url_refused_at_send_is_not_called_and_not_retried(tmp_path: Path, recorder307: _Recorder) -> None:
    dev = Settings(db=tmp_path / "u.sqlite", webhook_allow_http=True, webhook_allow_private=True)
    strict = Settings(db=tmp_path / "u.sqlite", webhook_allow_http=True)  # private addresses refused at send
    service = _send_one(tmp_path, f"http://127.0.0.1:{recorder307.port}/second", dev, strict)
    assert recorder307.seen == []
    [d] = service.repo.list_deliveries("rus")
    assert d.delivered_at is None and d.next_attempt_at is None and (d.last_error or "").startswith("refused")


def test_no_redirects_by_default_and_a_capped_number_when_allowed(tmp_path: Path, recorder307: _Recorder) -> None:
    dev = {"webhook_allow_http": True, "webhook_allow_private": True}
    url = f"http://127.0.0.1:{recorder307.port}/first"
    service = _send_one(tmp_path / "a", url, Settings(db=tmp_path / "a" / "u.sqlite", **dev),
                        Settings(db=tmp_path / "a" / "u.sqlite", **dev))
    [d] = service.repo.list_deliveries("rus")
    assert d.delivered_at is None and (d.last_error or "").startswith("HTTP 307")
    assert [p for p, _ in recorder307.seen] == ["/first"]
    recorder307.seen.clear()
    follow = Settings(db=tmp_path / "b" / "u.sqlite", webhook_max_redirects=1, **dev)
    service = _send_one(tmp_path / "b", url, follow, follow)
    [d] = service.repo.list_deliveries("rus")
    assert d.delivered_at is not None and [p for p, _ in recorder307.seen] == ["/first", "/second"]


def test_the_request_goes_to_the_pinned_address_with_the_name_in_host(tmp_path: Path) -> None:
    first = socket.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)[0][4][0]
    if first != "127.0.0.1":
        pytest.skip(f"localhost resolves to {first} first here")
    rec = _Recorder()
    try:
        dev = Settings(db=tmp_path / "u.sqlite", webhook_allow_http=True, webhook_allow_private=True)
        service = _send_one(tmp_path, f"http://localhost:{rec.port}/hook", dev, dev)
        assert rec.seen == [("/hook", f"localhost:{rec.port}")]
        assert service.repo.list_deliveries("rus")[0].delivered_at is not None
    finally:
        rec.server.shutdown()
        rec.server.server_close()
