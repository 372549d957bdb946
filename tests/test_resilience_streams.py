"""Issue 19, event streams: a party holds at most ``stream_max_per_party`` streams (429 with Retry-After beyond,
the slot given back when a stream ends), and a replay reads its backlog in pages of ``stream_page`` off the event
loop. A real uvicorn server on a thread of this process."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from forewarn.core.model import Party
from forewarn.http.app import create_app
from forewarn.service.settings import Settings
from tests.builders import agreement, circle, operation
from tests.server_support import free_port


def _app(db: Path, **settings: Any) -> Any:
    app = create_app(Settings(db=db, **settings), run_worker=False)
    rt = app.state.runtime
    for p in ("usa", "fra"):
        rt.service.put_party(Party(id=p, name=p.upper()))
    rt.service.put_agreement(agreement("mou", ["usa", "fra"]))
    return app


def _backlog(app: Any, count: int) -> None:
    service = app.state.runtime.service
    for i in range(count):
        now = datetime.now(UTC)
        service.notify(operation(f"op{i}", "usa", [circle(30.0 + (i % 40) * 0.5, 20.0 + i // 40, t0=now)]), now)


@contextmanager
def _serving(app: Any) -> Iterator[str]:
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True, name="event-loop").start()
    try:
        while not server.started:
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True


def _auth(app: Any, party: str) -> dict[str, str]:
    token, _ = app.state.runtime.token_for(party, ["read"])
    return {"Authorization": f"Bearer {token}"}


def test_a_party_gets_a_bounded_number_of_streams_and_a_clear_429_beyond(tmp_path: Path) -> None:
    app = _app(tmp_path / "s.sqlite", stream_max_per_party=2)
    with _serving(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        headers = _auth(app, "fra")
        with client.stream("GET", "/v1/stream", headers=headers) as one, \
                client.stream("GET", "/v1/stream", headers=headers) as two:
            assert one.status_code == two.status_code == 200
            third = client.get("/v1/stream", headers=headers)
            assert third.status_code == 429, third.text
            assert int(third.headers["Retry-After"]) >= 1
            assert third.json()["error"]["code"] == "rate_limited"
            assert "stream_max_per_party" in third.json()["error"]["message"]
            other = client.get("/v1/operations", headers=_auth(app, "usa"))  # other parties are not limited
            assert other.status_code == 200
            with client.stream("GET", "/v1/stream", headers=_auth(app, "usa")) as theirs:
                assert theirs.status_code == 200
        deadline = time.monotonic() + 10  # both closed: their slots come back
        while app.state.runtime.hub.open_streams.get("fra") and time.monotonic() < deadline:
            time.sleep(0.05)
        with client.stream("GET", "/v1/stream", headers=headers) as again:
            assert again.status_code == 200


def test_a_replay_reads_its_backlog_in_bounded_pages_and_misses_nothing(tmp_path: Path) -> None:
    app = _app(tmp_path / "r.sqlite", stream_page=25)
    _backlog(app, 110)
    rt = app.state.runtime
    real_inbox, pages, threads = rt.desk.inbox, [], set()

    def inbox(party_id: str, after: int, channel: str | None, limit: int) -> Any:
        out = real_inbox(party_id, after, channel, limit)
        pages.append((limit, len(out)))
        threads.add(threading.current_thread().name)
        return out

    rt.desk.inbox = inbox
    seen: list[int] = []
    with _serving(app) as url, httpx.stream("GET", f"{url}/v1/stream", headers=_auth(app, "fra"),
                                            timeout=20) as response:
        for line in response.iter_lines():
            if line.startswith("id: "):
                seen.append(int(line[4:]))
                if len(seen) == 110:
                    break
    assert seen == sorted(seen) and len(set(seen)) == 110
    assert all(limit == 25 and n <= 25 for limit, n in pages) and len(pages) >= 5
    assert "event-loop" not in threads  # pages are read off the event loop
