"""Slow receivers (issue 19): a healthy webhook receiver's delivery latency, alone and next to a black-holed one.

    python bench/webhooks.py            # ~1 minute; prints JSON, writes its section of RESULTS.md

The service (a real SQLite file, the delivery worker in its thread, as `forewarn serve` runs it) files notices of
party usa at a steady rate; each is delivered by webhook to fra (a receiver that answers 204 at once) and, in the
second phase, to rus, whose receiver accepts the TCP connection and never answers (a black hole). The latency of a
delivery is its arrival at fra's receiver minus its creation (``created_at``, the commit of the notice), so it
contains the worker's wake-up, the lane's queue and the HTTP round trip on loopback. Anchor: the same healthy
receiver alone, in the same run.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from common import BENCH_DIR, git, host_info, write_section

sys.path.insert(0, str(BENCH_DIR.parent / "src"))

from forewarn.core.model import Agreement, Operation, Party
from forewarn.notify.worker import DeliveryWorker
from forewarn.service.compose import build_service
from forewarn.service.desk import DeliveryDesk
from forewarn.service.settings import Settings
from forewarn.service.tokens import IssuerKey

TITLE = "## Slow webhook receivers (bench/webhooks.py)"


class Receivers:
    """A healthy receiver (204 at once, notes each delivery's lag in seconds) and a black hole (holds connections
    open, never reads or answers), both on loopback."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self.held: list[socket.socket] = []
        lags = self.lags

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body: dict[str, Any] = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                lags.append((datetime.now(UTC) - datetime.fromisoformat(body["created_at"])).total_seconds())
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.hole = socket.socket()
        self.hole.bind(("127.0.0.1", 0))
        self.hole.listen(256)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.held.append(self.hole.accept()[0])
            except OSError:
                return

    @property
    def healthy_url(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}/hook"

    @property
    def hole_url(self) -> str:
        return f"http://127.0.0.1:{self.hole.getsockname()[1]}/hook"

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()
        self.hole.close()
        for conn in self.held:
            conn.close()


def phase(receivers: Receivers, black_hole: bool, count: int, rate: float, work: Path) -> dict[str, Any]:
    """File ``count`` notices at ``rate`` per second; the healthy receiver's lags (ms) and how many arrived."""
    receivers.lags.clear()
    db = work / f"{'hole' if black_hole else 'alone'}.sqlite"
    service = build_service(Settings(db=db, webhook_allow_http=True, webhook_allow_private=True))
    service.put_party(Party(id="usa", name="Coalition"))
    service.put_party(Party(id="fra", name="France", webhook_url=receivers.healthy_url))
    parties = ["usa", "fra"]
    if black_hole:
        service.put_party(Party(id="rus", name="Russia", webhook_url=receivers.hole_url))
        parties.append("rus")
    service.put_agreement(Agreement(id="all", name="all", parties=parties))
    worker = DeliveryWorker(DeliveryDesk(service), IssuerKey.generate(), lambda: datetime.now(UTC),
                            poll_s=service.settings.worker_poll_s, timeout_s=service.settings.webhook_timeout_s)
    service.listeners.append(worker.wake)
    worker.start()
    start = time.monotonic()
    try:
        for i in range(count):
            time.sleep(max(0.0, start + i / rate - time.monotonic()))
            now = datetime.now(UTC)
            vol = {"footprint": {"kind": "circle", "center": [20.0 + (i % 300) * 0.3, 10.0 + i // 300],
                                 "radius_m": 2000}, "lower_m": 1000, "upper_m": 3000,
                   "start": now + timedelta(hours=1), "end": now + timedelta(hours=2)}
            service.notify(Operation.model_validate({"id": f"op{i}", "party_id": "usa",
                                                     "activity_class": "transport", "volumes": [vol]}), now)
        deadline = time.monotonic() + 15
        while len(receivers.lags) < count and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop()
        service.repo.close()
    ms = sorted(x * 1000 for x in receivers.lags)
    return {"black_hole": black_hole, "filed": count, "arrived": len(ms),
            "p50_ms": round(statistics.median(ms), 1) if ms else None,
            "p99_ms": round(ms[min(len(ms) - 1, int(0.99 * len(ms)))], 1) if ms else None,
            "max_ms": round(ms[-1], 1) if ms else None}


def section(result: dict[str, Any]) -> str:
    rows = "\n".join(f"| {'next to a black-holed receiver' if p['black_hole'] else 'alone'} | {p['filed']} | "
                     f"{p['arrived']} | {p['p50_ms']} | {p['p99_ms']} | {p['max_ms']} |" for p in result["phases"])
    return f"""{TITLE}

`python bench/webhooks.py` at {result['commit']} ({result['host']['date']}, {result['host']['nproc']} cores, a shared
machine: other work was running). {result['rate']:g} notices/s for {result['count'] / result['rate']:g} s; each
notice is delivered by webhook to a healthy receiver (204 at once) and, in the second phase, also to a receiver
that accepts the connection and never answers (webhook_timeout_s {result['timeout_s']:g} s). Latency: arrival at
the healthy receiver minus the delivery's creation.

| healthy receiver | filed | arrived | p50 ms | p99 ms | max ms |
|---|---|---|---|---|---|
{rows}

Before the per-receiver lanes (issue 19's report, one shared sender): the healthy receiver's deliveries of five
consecutive filings arrived 0, 5, 10, 15 and 20 s late next to a black hole.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=5.0, help="notices per second")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--no-write", action="store_true", help="do not write RESULTS.md")
    args = parser.parse_args(argv)
    receivers = Receivers()
    work = Path(tempfile.mkdtemp(prefix="forewarn-bench-webhooks-"))
    try:
        phases = [phase(receivers, hole, args.count, args.rate, work) for hole in (False, True)]
    finally:
        receivers.close()
    result = {"commit": git("rev-parse", "--short", "HEAD"), "host": host_info({}), "rate": args.rate,
              "count": args.count, "timeout_s": Settings().webhook_timeout_s, "phases": phases}
    print(json.dumps(result, indent=2))
    (BENCH_DIR / "results" / "webhooks.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if not args.no_write:
        write_section(BENCH_DIR / "RESULTS.md", TITLE, section(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
