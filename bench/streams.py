#!/usr/bin/env python
"""Stream starvation (issue 19): 500 event streams replaying a 10k-delivery backlog while another party reads.

    python bench/streams.py                        # ~2 minutes; prints JSON, writes its section of RESULTS.md
    python bench/streams.py --baseline --src ../main/src --no-write > before.json   # the checkout before
    python bench/streams.py --before before.json < after.json                         # both in RESULTS.md

What runs. A real ``forewarn serve`` in a subprocess (this checkout's src/ on PYTHONPATH, or ``--src``) on a fresh
database in a temporary directory. Parties are made with the CLI before the server starts; the backlog (party
fra's deliveries, copies of one real delivery of a real filing, in one transaction) is written in-process too.
Phases: (1) the reader alone: party usa's ``GET /v1/operations`` back to back for ``--quiet-s`` seconds; (2)
``--streams`` connections open ``GET /v1/stream`` as fra without Last-Event-ID (each replays the whole backlog,
read and discarded as fast as the client can) while the reader repeats its requests for ``--window-s`` seconds.
The reader runs in its own process (its own event loop, unaffected by the stream client's). Reported: the
reader's p50/p99/max latency in each phase, the streams accepted and refused (429), events received, and the
server's peak RSS. ``stream_max_per_party`` is raised to ``--streams`` so that every stream is accepted (the
worst case); the default limit (8) is what protects a real deployment.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCH_DIR, git, host_info, write_section

TITLE = "## Stream starvation (bench/streams.py)"


def _cli(src: str, *args: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": src}
    out = subprocess.run([sys.executable, "-m", "forewarn", *args], capture_output=True, text=True, env=env,
                         check=True, timeout=120)
    doc: dict[str, Any] = json.loads(out.stdout) if out.stdout.strip().startswith("{") else {}
    return doc


def _backlog(src: str, db: Path, count: int) -> None:
    """One real filing of usa (a delivery to fra), then ``count - 1`` copies of that delivery."""
    code = f"""
import uuid
from datetime import UTC, datetime, timedelta
from forewarn.core.model import Agreement, Operation, SeparationMinima
from forewarn.service.compose import build_service
from forewarn.service.settings import Settings
s = build_service(Settings(db={str(db)!r}))
s.put_agreement(Agreement(id="mou", name="mou", parties=["usa", "fra"],
                          default_minima=SeparationMinima(horizontal_m=1000, vertical_m=300, time_s=60)))
now = datetime.now(UTC)
vol = {{"footprint": {{"kind": "circle", "center": [38.0, 35.0], "radius_m": 2000}}, "lower_m": 1000,
       "upper_m": 3000, "start": now + timedelta(hours=3), "end": now + timedelta(hours=5)}}
s.notify(Operation.model_validate({{"id": "op0", "party_id": "usa", "activity_class": "transport",
                                    "volumes": [vol]}}), now)
[d] = s.repo.list_deliveries("fra")
with s.repo.transaction():
    s.repo.add_deliveries([d.model_copy(update={{"id": str(uuid.uuid4())}}) for _ in range({count - 1})])
"""
    subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": src}, check=True, timeout=600)


def _token(url: str, creds: dict[str, Any]) -> str:
    r = httpx.post(f"{url}/v1/token", data={"grant_type": "client_credentials", "client_id": creds["client_id"],
                                            "client_secret": creds["client_secret"]}, timeout=30)
    r.raise_for_status()
    token: str = r.json()["access_token"]
    return token


def probe(url: str, token: str, seconds: float) -> list[float]:
    """GET /v1/operations back to back for ``seconds``: each latency, seconds (run in its own process)."""
    out: list[float] = []
    end = time.monotonic() + seconds
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as client:
        while time.monotonic() < end:
            t = time.perf_counter()
            client.get("/v1/operations").raise_for_status()
            out.append(time.perf_counter() - t)
    return out


def _probe_process(src: str, url: str, token: str, seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, __file__, "--probe", url, token, str(seconds)], stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": src})


async def _one_stream(host: str, port: int, token: str, until: float, tally: dict[str, int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET /v1/stream HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    tally["accepted" if status == 200 else f"status_{status}"] = tally.get(
        "accepted" if status == 200 else f"status_{status}", 0) + 1
    try:
        while status == 200 and time.monotonic() < until:
            chunk = await asyncio.wait_for(reader.read(1 << 16), max(0.01, until - time.monotonic()))
            if not chunk:
                break
            tally["events"] = tally.get("events", 0) + chunk.count(b"\nid: ") + chunk.startswith(b"id: ")
            tally["bytes"] = tally.get("bytes", 0) + len(chunk)
    except TimeoutError:
        pass
    finally:
        writer.close()


def _streams(url: str, token: str, count: int, seconds: float) -> dict[str, int]:
    host, port = url.split("//")[1].split(":")
    tally: dict[str, int] = {}

    async def run() -> None:
        until = time.monotonic() + seconds
        await asyncio.gather(*(_one_stream(host, int(port), token, until, tally) for _ in range(count)),
                             return_exceptions=True)

    asyncio.run(run())
    return tally


def _rss_peak(pid: int, stop: threading.Event, out: list[int]) -> None:
    while not stop.is_set():
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    out.append(int(line.split()[1]) * 1024)
        except OSError:
            return
        time.sleep(0.2)


def _summary(lat: list[float]) -> dict[str, float]:
    ms = sorted(x * 1000 for x in lat)
    if not ms:
        return {"n": 0}
    return {"n": len(ms), "p50_ms": round(statistics.median(ms), 1),
            "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 1), "max_ms": round(ms[-1], 1)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    src = args.src
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "streams.sqlite"
        usa = _cli(src, "party", "add", "usa", "--name", "USA", "--db", str(db))
        fra = _cli(src, "party", "add", "fra", "--name", "FRA", "--db", str(db))
        _backlog(src, db, args.backlog)
        port = 18_000 + os.getpid() % 1000
        env = {**os.environ, "PYTHONPATH": src}
        if not args.baseline:
            env["FOREWARN_STREAM_MAX_PER_PARTY"] = str(args.streams)
        server = subprocess.Popen([sys.executable, "-m", "forewarn", "serve", "--db", str(db), "--port", str(port)],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{url}/v1/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            tokens = {"usa": _token(url, usa), "fra": _token(url, fra)}
            quiet = _probe_process(src, url, tokens["usa"], args.quiet_s)
            alone = json.loads(quiet.communicate()[0])
            stop, rss = threading.Event(), [0]
            sampler = threading.Thread(target=_rss_peak, args=(server.pid, stop, rss))
            sampler.start()
            loaded = _probe_process(src, url, tokens["usa"], args.window_s)
            tally = _streams(url, tokens["fra"], args.streams, args.window_s + 2)
            under_load = json.loads(loaded.communicate()[0])
            stop.set()
            sampler.join()
        finally:
            server.terminate()
            server.wait(timeout=30)
    return {"host": host_info({"httpx": httpx.__version__}), "commit": git("rev-parse", "--short", "HEAD"),
            "baseline": args.baseline, "streams": args.streams, "backlog": args.backlog, "window_s": args.window_s,
            "reader_alone": _summary(alone), "reader_under_streams": _summary(under_load), "streams_tally": tally,
            "server_peak_rss_mib": round(max(rss) / 2**20, 1)}


def _before(before: dict[str, Any] | None) -> str:
    if before is None:
        return ""
    b, t = before["reader_under_streams"], before["streams_tally"]
    return (f"\nBefore (the same run against the src/ of the main branch without these changes, `--baseline "
            f"--src`): the other party completed {b.get('n')} requests in {before['window_s']:g} s "
            f"(p50 {b.get('p50_ms')} ms, max {b.get('max_ms')} ms); {t.get('events', 0):,} events; server peak "
            f"RSS {before['server_peak_rss_mib']} MiB.\n")


def section(result: dict[str, Any], command: str, before: dict[str, Any] | None = None) -> str:
    a, b, t = result["reader_alone"], result["reader_under_streams"], result["streams_tally"]
    return f"""{TITLE}

`{command}` at {result['commit']} ({result['host']['date']}, {result['host']['nproc']} cores, shared machine).
{result['streams']} `GET /v1/stream` connections of one party (fra) without Last-Event-ID, each replaying a
{result['backlog']:,}-delivery backlog for {result['window_s']:g} s, while party usa's `GET /v1/operations` runs
back to back in another process (stream_max_per_party raised to {result['streams']}: the worst case).

| the other party's GET /v1/operations | requests | p50 ms | p99 ms | max ms |
|---|---|---|---|---|
| alone | {a.get('n')} | {a.get('p50_ms')} | {a.get('p99_ms')} | {a.get('max_ms')} |
| with {result['streams']} streams replaying | {b.get('n')} | {b.get('p50_ms')} | {b.get('p99_ms')} \
| {b.get('max_ms')} |

Streams accepted {t.get('accepted', 0)}, refused {sum(v for k, v in t.items() if k.startswith('status_'))};
events received {t.get('events', 0):,} ({t.get('bytes', 0) / 2**20:,.0f} MiB); server peak RSS
{result['server_peak_rss_mib']} MiB.
{_before(before)}"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--window-s", type=float, default=30.0)
    parser.add_argument("--quiet-s", type=float, default=5.0)
    parser.add_argument("--src", default=str(BENCH_DIR.parent / "src"), help="the src/ to run (PYTHONPATH)")
    parser.add_argument("--baseline", action="store_true", help="do not set the stream settings (older checkout)")
    parser.add_argument("--no-write", action="store_true", help="do not write RESULTS.md")
    parser.add_argument("--before", type=Path, help="the JSON printed by a --baseline run, quoted in RESULTS.md")
    parser.add_argument("--probe", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe:
        print(json.dumps(probe(args.probe[0], args.probe[1], float(args.probe[2]))))
        return 0
    if args.before is not None:  # only rewrite the section from saved results
        before = json.loads(args.before.read_text(encoding="utf-8"))
        result = json.loads(sys.stdin.read())
        write_section(BENCH_DIR / "RESULTS.md", TITLE, section(result, "python bench/streams.py", before))
        return 0
    result = run(args)
    print(json.dumps(result, indent=2))
    if not args.no_write and not args.baseline:
        write_section(BENCH_DIR / "RESULTS.md", TITLE, section(result, "python bench/streams.py"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
