#!/usr/bin/env python
"""HTTP API benchmark: filings per second and end-to-end latency of a real ``forewarn serve``, and
notice-to-delivery latency to connected event-stream (SSE) subscribers.

    python bench/api.py                     # ~5 minutes; writes bench/results/api.json and bench/RESULTS-api.md
                                            # (the section that bench/RESULTS.md carries)

What runs. A real server in a subprocess (``python -m forewarn serve --db DB --port PORT``: uvicorn, one process,
the embedded SQLite file, the delivery worker thread), on a fresh database in a temporary directory. The admin
party is created with the CLI (``forewarn party add admin --scopes admin``) before the server starts; every other
party and its credentials through the admin API (``POST /v1/parties``, ``POST /v1/parties/{id}/credentials``),
tokens with ``POST /v1/token``. The load generator is this process: for the timed filings a minimal asyncio
HTTP/1.1 client (:class:`RawConnection`: keep-alive, one connection per worker; httpx saturated the client's
core at about 800 requests/s) on loopback, N workers each sending its next filing as soon as the previous
answer arrived (closed loop), for a fixed time or count; the delivery phase's event streams are read the same
way (:func:`sse_lines`), and so are the idle streams; httpx for the setup. A filing's
latency is measured from just before the client sends ``POST /v1/operations`` to the end of the response:
HTTP, token verification, request validation, detection, resolutions, site warnings, the transaction
(operation version, notice, conflicts, the deliveries it owes: the outbox) and the response.

Airspace. 250 clusters on a 16 x 16 grid (0.5 degree pitch, 36-43.5E x 33-40.5N); each cluster holds 4 stored
operations (the preload: 1,000 operations, not timed) of parties p0..p3 at its corners (+-0.1 degree), circles of
2 km, 1,000-3,000 m, over the same 24 h window starting 3 h after the run. One agreement binds p0..p7 (minima
1,000 m / 300 m / 60 s, ``deliver: all``: every filing owes 7 deliveries). The timed filings go to the centres of
the clusters in 60 s windows on a 180 s pitch inside the 24 h window (even slots non-overlapping, odd slots
overlapping; new filings never meet each other):

* non-overlapping: a 2 km circle at a cluster centre (>= 14 km from the corners), parties p0..p7: no conflict;
* overlapping: a 13 km circle at a cluster centre, 1,500-2,500 m, parties p4..p7: it meets the 4 stored
  operations of the cluster (4 conflicts), the new filing is asked to adjust (first notified holds), so the
  service searches resolutions for it (time shift, altitude change, lateral offset, each verified by detection).

Delivery latency. 50 subscriber parties s00..s49 and a notifier n0, bound by a second agreement; each subscriber
holds ``GET /v1/stream`` open (its own token, its own connection). n0 files non-conflicting notices at a fixed
rate (open loop); each notice owes one delivery per subscriber. Latency = SSE event parsed at the subscriber minus
the moment just before the client sent the notice's POST (one process, one ``time.perf_counter`` clock), over all
(notice, subscriber) pairs.

A last filing phase repeats the non-overlapping workload at concurrency 10 while the 50 subscribers hold their
streams open (they are owed nothing): what idle streams cost the filings.

Profile. After the timed phases, each filing workload and the fastest delivery rate run again with
``py-spy record --gil`` attached to the server; every sample is put in one group (resolutions, detection,
validation, authentication, persistence, outbox, streams, HTTP/ASGI, event loop, ...). The timed numbers are
measured without the profiler. Before the server starts, ``Forewarn.notify`` is also timed and cProfiled
in-process (no HTTP, one thread) on the same data: the difference from the server's CPU per filing is the cost
of HTTP, FastAPI, authentication and thread hand-offs.

Hygiene (the machine is shared): the server is pinned to CPU 0 and the load generator to the others
(``--server-cpus``); before each phase the script waits (``--quiet-wait``) until other processes plus hypervisor
steal use under 0.15 cores, and it reports that noise per phase, marking noisy phases; the subprocesses import
this checkout's ``src/`` (PYTHONPATH), checked, and the src/ tree is recorded before and after the imports.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from common import git, host_info

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_JSON = BENCH_DIR / "results" / "api.json"
DEFAULT_MD = BENCH_DIR / "RESULTS-api.md"
SECTION_TITLE = "## HTTP API (bench/api.py)"

GRID = 16
CLUSTERS = 250
PITCH_DEG = 0.5
CORNER_DEG = 0.1
ORIGIN = (36.0, 33.0)
WINDOW_H = 24
SLOT_S = 180
SLOT_LEN_S = 60
SLOTS = WINDOW_H * 3600 // SLOT_S
FILERS = [f"p{i}" for i in range(8)]
MINIMA = {"horizontal_m": 1000, "vertical_m": 300, "time_s": 60}

TARGET_NON_OVERLAPPING = 1000.0
TARGET_OVERLAPPING = 500.0
TARGET_DELIVERY_P99_MS = 50.0
NOISY_CORES = 0.15
ANCHOR = ("reference ASTM F3548 DSS (Go + CockroachDB), 10 locust users on one machine: 120-150 requests/s at "
          "p50 20 ms for non-overlapping intents, 5-30 requests/s for overlapping ones; F3548 allows 1 s to notify")


# ---------------------------------------------------------------------------------------------- workload
@dataclass(frozen=True)
class Layout:
    """Where and when everything is: the start of the 24 h window (whole minute, 3 h after the run)."""

    t0: datetime

    @staticmethod
    def centre(cluster: int) -> tuple[float, float]:
        return ORIGIN[0] + PITCH_DEG * (cluster % GRID), ORIGIN[1] + PITCH_DEG * (cluster // GRID)

    def volume(self, lon: float, lat: float, radius_m: float, lower: float, upper: float, start: datetime,
               end: datetime) -> dict[str, Any]:
        return {"footprint": {"kind": "circle", "center": [round(lon, 6), round(lat, 6)], "radius_m": radius_m},
                "lower_m": lower, "upper_m": upper, "start": start.isoformat(), "end": end.isoformat()}

    def preload(self, k: int) -> tuple[str, dict[str, Any]]:
        """Stored operation k (0..999): corner k % 4 of cluster k // 4, party p{k % 4}, the whole window."""
        cluster, corner = divmod(k, 4)
        lon, lat = self.centre(cluster)
        lon += CORNER_DEG * (1 if corner & 1 else -1)
        lat += CORNER_DEG * (1 if corner & 2 else -1)
        vol = self.volume(lon, lat, 2000, 1000, 3000, self.t0, self.t0 + timedelta(hours=WINDOW_H))
        return f"p{corner}", {"id": f"pre-{k:05d}", "activity_class": "transport", "volumes": [vol]}

    def slot(self, s: int) -> tuple[datetime, datetime]:
        start = self.t0 + timedelta(seconds=SLOT_S * s)
        return start, start + timedelta(seconds=SLOT_LEN_S)

    def filing(self, workload: str, i: int) -> tuple[str, dict[str, Any]]:
        """The i-th timed filing of a workload (i < 250 * 240): cluster i % 250, slot 2 * (i // 250) (+1)."""
        cluster, rep = i % CLUSTERS, i // CLUSTERS
        if rep >= SLOTS // 2:
            raise ValueError(f"workload exhausted at {i} filings")
        lon, lat = self.centre(cluster)
        if workload == "non-overlapping":
            start, end = self.slot(2 * rep)
            vol = self.volume(lon, lat, 2000, 1000, 3000, start, end)
            party = FILERS[i % 8]
            prefix = "non"
        else:
            start, end = self.slot(2 * rep + 1)
            vol = self.volume(lon, lat, 13_000, 1500, 2500, start, end)
            party = FILERS[4 + i % 4]
            prefix = "ovl"
        return party, {"id": f"{prefix}-{i:06d}", "activity_class": "transport", "volumes": [vol]}

    def notice(self, k: int) -> dict[str, Any]:
        """Notice k of the notifier n0 for the delivery phase: far from everything, never conflicting."""
        lon, lat = 10.0 + 0.1 * (k % 50), 50.0 + 0.1 * (k // 50)
        vol = self.volume(lon, lat, 1000, 1000, 3000, self.t0, self.t0 + timedelta(hours=1))
        return {"id": f"sse-{k:06d}", "activity_class": "transport", "volumes": [vol]}


# ---------------------------------------------------------------------------------------------- server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


SRC_DIR = BENCH_DIR.parent / "src"


def forewarn_env() -> dict[str, str]:
    """The environment of the server and CLI subprocesses: this checkout's src/ first on the path, whatever
    checkout the installed (editable) package points at."""
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": str(SRC_DIR) + (os.pathsep + path if path else "")}


def imported_from() -> str:
    """Where the subprocesses import forewarn from (checked, not assumed)."""
    proc = subprocess.run([sys.executable, "-c", "import forewarn; print(forewarn.__file__)"], capture_output=True,
                          text=True, env=forewarn_env(), check=False)
    return proc.stdout.strip()


def cli(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "forewarn", *args], capture_output=True, text=True, timeout=120,
                          check=False, env=forewarn_env())
    if proc.returncode != 0:
        raise RuntimeError(f"forewarn {' '.join(args)} failed: {proc.stderr[-2000:]}")
    return proc.stdout


@dataclass
class Server:
    db: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, cpus: str | None, program: list[str] | None = None, extra: Sequence[str] = ()) -> None:
        """Start ``forewarn serve`` (or ``program``, given --db and --port, then ``extra``) on this database and
        port."""
        self.log_path = self.db.with_name(f"{self.db.stem}-{self.port}.log")
        head = program or [sys.executable, "-m", "forewarn", "serve"]
        cmd = [*head, "--db", str(self.db), "--port", str(self.port), *extra]
        if cpus:
            cmd = ["taskset", "-c", cpus, *cmd]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=forewarn_env())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not start: {self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def cpu_times(self) -> tuple[float, float]:
        """User and system CPU seconds so far of the server process (all threads) and of every process under it
        (uvicorn's worker processes when it runs several)."""
        tick = os.sysconf("SC_CLK_TCK")
        user = system = 0
        for pid in process_tree(self.pid):
            try:
                with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except FileNotFoundError:  # ended between the listing and the read
                continue
            user, system = user + int(fields[11]), system + int(fields[12])
        return user / tick, system / tick

    def cpu_s(self) -> float:
        return sum(self.cpu_times())

    def rss_mib(self) -> float:
        with open(f"/proc/{self.pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0


def process_tree(pid: int) -> list[int]:
    """``pid`` and every live process under it (children of each of its threads, recursively), from /proc."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        with contextlib.suppress(FileNotFoundError):
            for task in os.listdir(f"/proc/{p}/task"):
                with contextlib.suppress(FileNotFoundError), open(f"/proc/{p}/task/{task}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
    return out


def machine_cpu() -> tuple[float, float]:
    """Busy (user + nice + system + irq + softirq) and steal CPU seconds of the whole machine so far."""
    with open("/proc/stat", encoding="ascii") as fh:
        v = [int(x) for x in fh.readline().split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / tick, (v[7] if len(v) > 7 else 0) / tick


async def wait_quiet(server: Server, max_wait_s: float) -> float:
    """Wait (at most ``max_wait_s``) until the CPU used by other processes plus the CPU stolen by the hypervisor
    stays under NOISY_CORES over 3 s (this machine is shared); returns the seconds waited."""
    t0 = time.perf_counter()
    while True:
        (busy0, steal0), server0, client0 = machine_cpu(), server.cpu_s(), time.process_time()
        await asyncio.sleep(3.0)
        (busy1, steal1), server1, client1 = machine_cpu(), server.cpu_s(), time.process_time()
        noise = (busy1 - busy0) - (server1 - server0) - (client1 - client0) + (steal1 - steal0)
        waited = time.perf_counter() - t0
        if noise / 3.0 < NOISY_CORES or waited >= max_wait_s:
            return round(waited, 1)


def access_log_lines(server: Server) -> int:
    assert server.log_path is not None
    with open(server.log_path, "rb") as fh:
        return sum(1 for line in fh if b'HTTP/1.1"' in line)


# ---------------------------------------------------------------------------------------------- setup
async def token(client: httpx.AsyncClient, creds: dict[str, Any]) -> dict[str, str]:
    r = await client.post("/v1/token", data={"grant_type": "client_credentials", "client_id": creds["client_id"],
                                             "client_secret": creds["client_secret"]})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def make_party(client: httpx.AsyncClient, admin: dict[str, str], party_id: str) -> dict[str, str]:
    r = await client.post("/v1/parties", headers=admin, json={"id": party_id, "name": party_id.upper()})
    if r.status_code != 201:
        raise RuntimeError(f"POST /v1/parties {party_id}: {r.status_code} {r.text}")
    r = await client.post(f"/v1/parties/{party_id}/credentials", headers=admin,
                          json={"scopes": ["notices:file", "read", "ack"]})
    if r.status_code != 201:
        raise RuntimeError(f"POST /v1/parties/{party_id}/credentials: {r.status_code} {r.text}")
    return await token(client, r.json())


async def setup(client: httpx.AsyncClient, admin_creds: dict[str, Any], subscribers: int, deliver: str,
                ) -> dict[str, dict[str, str]]:
    """Parties, credentials, tokens and the two agreements; returns party id -> Authorization header."""
    admin = await token(client, admin_creds)
    ids = [*FILERS, "n0", *(f"s{k:02d}" for k in range(subscribers))]
    headers: dict[str, dict[str, str]] = {}
    for pid in ids:  # sequential: each credential costs the server one scrypt hash (and /v1/token one more)
        headers[pid] = await make_party(client, admin, pid)
    agreements: list[dict[str, Any]] = [
        {"id": "mou-file", "name": "filing parties", "parties": FILERS, "deliver": deliver},
        {"id": "mou-sse", "name": "notifier and subscribers", "parties": ["n0", *ids[len(FILERS) + 1:]],
         "deliver": "all"},
    ]
    for body in agreements:
        body |= {"min_notice_s": 600, "ack_deadline_s": 3600, "default_minima": MINIMA}
        r = await client.post("/v1/agreements", headers=admin, json=body)
        if r.status_code != 201:
            raise RuntimeError(f"POST /v1/agreements: {r.status_code} {r.text}")
    return headers


# ---------------------------------------------------------------------------------------------- statistics
def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in 0..100)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summary_ms(latencies_s: list[float]) -> dict[str, float]:
    values = sorted(v * 1000 for v in latencies_s)
    if not values:
        return {"p50_ms": math.nan, "p90_ms": math.nan, "p99_ms": math.nan, "max_ms": math.nan, "mean_ms": math.nan}
    return {"p50_ms": round(percentile(values, 50), 2), "p90_ms": round(percentile(values, 90), 2),
            "p99_ms": round(percentile(values, 99), 2), "max_ms": round(values[-1], 2),
            "mean_ms": round(sum(values) / len(values), 2)}


# ---------------------------------------------------------------------------------------------- filing load
@dataclass
class Counter1:
    """The next filing index, shared by the workers of one phase (one event loop: no lock needed)."""

    next: int = 0


class RawConnection:
    """One keep-alive HTTP/1.1 connection to the server on loopback, for the timed filings: the request written
    in one piece, the response read by its Content-Length (uvicorn sends one for every JSON answer). About a
    tenth of httpx's client CPU per request: with httpx the load generator saturated its core at about 800
    requests/s, so it could not have measured the 1,000/s target."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def post(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        """(status, body) of ``POST path``; connects (again) when needed. Raises OSError or
        asyncio.IncompleteReadError when the connection fails mid-request (the request is not retried)."""
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.writer.write(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n{head}"
                          f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        try:
            raw = await self.reader.readuntil(b"\r\n\r\n")
            lines = raw.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            if "content-length" not in fields:
                raise OSError(f"response without Content-Length: {lines[0]}")
            answer = await self.reader.readexactly(int(fields["content-length"]))
        except BaseException:
            await self.close()
            raise
        if fields.get("connection", "").lower() == "close":
            await self.close()
        return status, answer


async def sse_lines(port: int, headers: dict[str, str]) -> AsyncIterator[tuple[float, str]]:
    """``GET /v1/stream`` on a connection of its own: each line of the event stream with the moment (perf_counter)
    its chunk was read, taken before any parsing. A minimal reader (chunked transfer coding, as uvicorn sends a
    stream), so that with 50 streams the load generator adds little delay of its own to what it measures; an
    answer other than 200 raises OSError."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        writer.write(f"GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n"
                     f"{head}\r\n".encode())
        raw = await reader.readuntil(b"\r\n\r\n")
        status = raw.split(b" ", 2)[1]
        if status != b"200":
            raise OSError(f"stream answered {status.decode()}")
        if b"transfer-encoding: chunked" not in raw.lower():
            raise OSError("stream not sent with chunked transfer coding")
        pending = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            if size == 0:
                return
            chunk = await reader.readexactly(size + 2)
            at = time.perf_counter()
            *lines, pending = (pending + chunk[:-2]).split(b"\n")
            for line in lines:
                yield at, line.decode()
    finally:
        writer.close()


async def run_filings(server: Server, headers: dict[str, dict[str, str]],
                      make: Callable[[int], tuple[str, dict[str, Any]]], concurrency: int, duration_s: float,
                      max_count: int, counter: Counter1, expect_conflicts: int | None = None,
                      path: str = "/v1/operations") -> dict[str, Any]:
    """Closed loop: ``concurrency`` workers, each filing its next operation (POST ``path``) when the previous one
    returned, until ``duration_s`` elapsed or ``max_count`` filings were sent."""
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    conflicts: Counter[int] = Counter()
    resolutions: Counter[str] = Counter()
    first = counter.next
    limit = first + max_count
    (user0, sys0), client_cpu0, (busy0, steal0) = server.cpu_times(), time.process_time(), machine_cpu()
    t_start = time.perf_counter()
    deadline = t_start + duration_s

    async def worker() -> None:
        connection = RawConnection(server.port)
        try:
            while time.perf_counter() < deadline and counter.next < limit:
                i = counter.next
                counter.next += 1
                party, body = make(i)
                content = json.dumps(body, separators=(",", ":")).encode()
                hdrs = headers[party] | {"Content-Type": "application/json"}
                t = time.perf_counter()
                try:
                    status, answer = await connection.post(path, hdrs, content)
                except (OSError, asyncio.IncompleteReadError) as exc:
                    statuses[type(exc).__name__] += 1
                    continue
                dt = time.perf_counter() - t
                statuses[str(status)] += 1
                if status == 201:
                    latencies.append(dt)
                    out = json.loads(answer)
                    conflicts[len(out["conflicts"])] += 1
                    for rs in out["resolutions"]:
                        kinds = sorted(o["kind"] for o in rs["options"])
                        resolutions["+".join(kinds) or "none found"] += 1
        finally:
            await connection.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - t_start
    user1, sys1 = server.cpu_times()
    server_cpu, client_cpu = user1 - user0 + sys1 - sys0, time.process_time() - client_cpu0
    busy1, steal1 = machine_cpu()
    others = (busy1 - busy0) - server_cpu - client_cpu
    ok = statuses.get("201", 0)
    result: dict[str, Any] = {
        "concurrency": concurrency, "sent": counter.next - first, "ok": ok,
        "errors": sum(v for k, v in statuses.items() if k != "201"), "statuses": dict(statuses),
        "wall_s": round(wall, 2), "filings_per_s": round(ok / wall, 1) if wall else 0.0,
        **summary_ms(latencies),
        "conflicts_per_filing": {str(k): v for k, v in sorted(conflicts.items())},
        "resolution_options": dict(resolutions),
        "server_cpu_s": round(server_cpu, 2), "server_cpu_share_of_one_core": round(server_cpu / wall, 2),
        "server_user_s": round(user1 - user0, 2), "server_system_s": round(sys1 - sys0, 2),
        "server_cpu_ms_per_filing": round(1000 * server_cpu / ok, 2) if ok else None,
        "client_cpu_s": round(client_cpu, 2), "client_cpu_share_of_one_core": round(client_cpu / wall, 2),
        "other_processes_cpu_cores": round(max(0.0, others) / wall, 2),
        "steal_cores": round((steal1 - steal0) / wall, 2),
    }
    if expect_conflicts is not None:
        result["expected_conflicts_per_filing"] = expect_conflicts
        result["all_as_expected"] = set(conflicts) == {expect_conflicts}
    return result


async def preload(client: httpx.AsyncClient, headers: dict[str, dict[str, str]], layout: Layout, count: int,
                  ) -> dict[str, Any]:
    counter = Counter1()
    failures: list[str] = []
    t0 = time.perf_counter()

    async def worker() -> None:
        while counter.next < count:
            k = counter.next
            counter.next += 1
            party, body = layout.preload(k)
            r = await client.post("/v1/operations", json=body, headers=headers[party])
            if r.status_code != 201:
                failures.append(f"{body['id']}: {r.status_code} {r.text[:300]}")
            elif r.json()["conflicts"]:
                failures.append(f"{body['id']}: unexpected conflicts")

    await asyncio.gather(*(worker() for _ in range(10)))
    if failures:
        raise RuntimeError(f"preload failed ({len(failures)}): {failures[:3]}")
    wall = time.perf_counter() - t0
    return {"operations": count, "wall_s": round(wall, 2), "filings_per_s": round(count / wall, 1)}


# ---------------------------------------------------------------------------------------------- deliveries
async def run_deliveries(server: Server, headers: dict[str, dict[str, str]], layout: Layout, subscribers: int,
                         notices: int, rate: float, first: int, last_seen: dict[int, int]) -> dict[str, Any]:
    """``subscribers`` SSE streams (resuming after ``last_seen[k]``, the last event id subscriber k got in an
    earlier phase); the notifier files ``notices`` at ``rate`` per second (open loop)."""
    ids = {layout.notice(first + k)["id"] for k in range(notices)}
    sent_at: dict[str, float] = {}
    arrivals: list[tuple[str, int, float]] = []
    post_latency: list[float] = []
    post_status: Counter[str] = Counter()
    replayed: list[str] = []
    expected = notices * subscribers
    done = asyncio.Event()
    errors: list[str] = []

    def event(k: int, at: float, text: str) -> None:
        op_id = json.loads(text)["payload"]["operation"]["id"]
        if op_id not in ids:
            replayed.append(op_id)
            return
        arrivals.append((op_id, k, at))
        if len(arrivals) >= expected:
            done.set()

    async with httpx.AsyncClient(base_url=server.url, timeout=30.0) as poster, \
            subscribed(server.port, headers, subscribers, last_seen, event, errors):
        cpu0, client_cpu0, (busy0, steal0) = server.cpu_s(), time.process_time(), machine_cpu()

        async def file(k: int) -> None:
            body = layout.notice(first + k)
            content = json.dumps(body, separators=(",", ":")).encode()
            hdrs = headers["n0"] | {"Content-Type": "application/json"}
            t = time.perf_counter()
            sent_at[body["id"]] = t
            r = await poster.post("/v1/operations", content=content, headers=hdrs)
            post_latency.append(time.perf_counter() - t)
            post_status[str(r.status_code)] += 1

        t_start = time.perf_counter()
        posts = []
        for k in range(notices):
            delay = t_start + k / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            posts.append(asyncio.create_task(file(k)))
        await asyncio.gather(*posts)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), timeout=30)
        wall = time.perf_counter() - t_start
        server_cpu, client_cpu = server.cpu_s() - cpu0, time.process_time() - client_cpu0
        busy1, steal1 = machine_cpu()

    latencies = [at - sent_at[op] for op, _, at in arrivals if op in sent_at]
    pairs = {(op, k) for op, k, _ in arrivals}
    return {
        "subscribers": subscribers, "notices": notices, "rate_per_s": rate,
        "deliveries_expected": expected, "deliveries_received": len(arrivals),
        "duplicates": len(arrivals) - len(pairs), "missing": expected - len(pairs),
        "earlier_notices_replayed": len(replayed),
        "stream_errors": errors, "notice_post_statuses": dict(post_status),
        **summary_ms(latencies),
        "notice_post": summary_ms(post_latency),
        "wall_s": round(wall, 2),
        "server_cpu_share_of_one_core": round(server_cpu / wall, 2),
        "client_cpu_share_of_one_core": round(client_cpu / wall, 2),
        "other_processes_cpu_cores": round(max(0.0, busy1 - busy0 - server_cpu - client_cpu) / wall, 2),
        "steal_cores": round((steal1 - steal0) / wall, 2),
    }


@contextlib.asynccontextmanager
async def subscribed(port: int, headers: dict[str, dict[str, str]], count: int, last_seen: dict[int, int],
                     on_data: Callable[[int, float, str], None] | None = None,
                     errors: list[str] | None = None) -> AsyncIterator[None]:
    """``count`` subscribers s00.. each following ``GET /v1/stream`` (:func:`sse_lines`), resuming after
    ``last_seen[k]``, which is kept up to date; ``on_data(k, read at, JSON text)`` for each event; a stream's
    failure goes to ``errors``. Entered once every stream has opened (and 0.5 s more); closed on exit."""
    ready: set[int] = set()
    connected = asyncio.Event()

    async def subscriber(k: int) -> None:
        hdrs = headers[f"s{k:02d}"] | ({"Last-Event-ID": str(last_seen[k])} if k in last_seen else {})
        try:
            async for at, line in sse_lines(port, hdrs):
                if line.startswith(": connected"):
                    ready.add(k)
                    if len(ready) == count:
                        connected.set()
                elif line.startswith("id: "):
                    last_seen[k] = int(line[4:])
                elif on_data is not None and line.startswith("data: "):
                    on_data(k, at, line[6:])
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            if errors is not None:
                errors.append(f"stream s{k:02d}: {exc!r}")

    tasks = [asyncio.create_task(subscriber(k)) for k in range(count)]
    try:
        await asyncio.wait_for(connected.wait(), timeout=30)
        await asyncio.sleep(0.5)
        yield
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@contextlib.asynccontextmanager
async def idle_streams(server: Server, headers: dict[str, dict[str, str]], count: int,
                       last_seen: dict[int, int]) -> AsyncIterator[list[int]]:
    """``count`` subscribers holding ``GET /v1/stream`` open (resuming after what they saw); yields a one-element
    list counting the events they received meanwhile (0 expected: nobody files to them)."""
    received = [0]

    def count_event(k: int, at: float, text: str) -> None:
        received[0] += 1

    async with subscribed(server.port, headers, count, last_seen, count_event):
        yield received


# ---------------------------------------------------------------------------------------------- profile
PROFILE_GROUPS: list[tuple[str, list[str]]] = [
    # (label, needles in the raw stack). Each sample goes to the FIRST group one of whose needles is on its stack,
    # so the shares add up to 100%; the order goes from the most specific (domain steps) to the most generic.
    ("resolutions: propose (resolutions.py)", ["propose (forewarn/resolutions.py"]),
    ("detection: detect (conflicts.py)", ["detect (forewarn/conflicts.py"]),
    ("validation: check_volume (footprint shape, geodesic area, horizon)", ["check_volume (forewarn/geo/volume.py"]),
    ("authentication: caller (JWT verify, cached, + get_party)", ["caller (forewarn/api/deps.py"]),
    ("ledger: entries (canonical JSON, hashes, INSERT) and the checkpoint signature per transaction",
     ["Ledger.append_many (", "Ledger._checkpoint ("]),
    ("persistence: writes (version, notice, conflicts, outbox rows), BEGIN/COMMIT (fsync)",
     ["add_operation_version (", "add_notice (", "add_deliveries (", "transaction (forewarn/store/sqlite.py"]),
    ("outbox planning: plan_deliveries (a payload per recipient)", ["plan_deliveries (forewarn/deliveries.py"]),
    ("reads in notify: list_parties / list_sites / list_subscriptions / get_operation / get_party",
     ["list_parties (forewarn/store", "list_sites (forewarn/store", "list_subscriptions (forewarn/store",
      "get_operation (forewarn/store", "get_party (forewarn/store"]),
    ("event streams: inbox query + Delivery parsing (DeliveryDesk.inbox)", ["DeliveryDesk.inbox ("]),
    ("event streams: recording sends (note_streamed + the worker's flush_streamed)",
     ["note_streamed (", "flush_streamed ("]),
    ("event streams: the SSE generator itself (JSON, send)", ["stream.<locals>.events ("]),
    ("delivery worker thread (forewarn/notify/worker.py)", ["(forewarn/notify/worker.py"]),
    ("uvicorn access log (logging)", ["(logging/__init__.py"]),
    ("response: FastAPI serialize_response (NoticeOutcome -> JSON)", ["serialize_response (fastapi/routing.py"]),
    ("request body: FastAPI request_body_to_args (JSON -> OperationIn)", ["request_body_to_args ("]),
    ("rest of the filing (the batch on the sequencer thread, the route: impacts, lead times, records, live picture)",
     ["Forewarn._run_batch (", "file_notice (forewarn/api/routes.py"]),
    ("thread pool: hand-offs and worker-thread bookkeeping (run_sync_in_worker_thread, Queue, WorkerThread)",
     ["run_sync_in_worker_thread (", "Queue.put (", "WorkerThread.run ("]),
    ("HTTP/ASGI on the event loop (uvicorn protocol, middleware incl. the request-id middleware, routing, "
     "dependencies)", ["RequestResponseCycle.run_asgi (", "(uvicorn/protocols/"]),
    ("event loop itself (uvloop/httptools C code, scheduling)", ["Runner.run ("]),
    ("other (worker-thread samples the sampler cut short, or outside every group)", []),
]
OTHER = PROFILE_GROUPS[-1][0]


HTTP_LABEL = next(lb for lb, _ in PROFILE_GROUPS if lb.startswith("HTTP/ASGI"))
LOOP_LABEL = next(lb for lb, _ in PROFILE_GROUPS if lb.startswith("event loop itself"))
WORKER_LABEL = next(lb for lb, _ in PROFILE_GROUPS if lb.startswith("delivery worker"))
FRAMEWORK_NEEDLES = ["(fastapi/", "(starlette/", "(uvicorn/", "(anyio/", "(sniffio/"]


def parse_collapsed(lines: list[str]) -> tuple[int, Counter[str], Counter[str], Counter[str], Counter[str]]:
    """py-spy raw output recorded with ``--threads`` ('thread (tid): name;frame;...;frame count') -> (samples,
    samples per thread name, inclusive samples per function, self samples per function, samples per group).

    The sampler (``--nonblocking``) sometimes returns a stack cut short at the bottom, or none: such a sample
    still belongs to its thread, so the event-loop thread's unmatched samples go to the HTTP/ASGI group when a
    framework frame is on them and to the event loop otherwise, the delivery worker's to the worker."""
    total = 0
    threads: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    groups: Counter[str] = Counter()
    for line in lines:
        body, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        head, _, stack = body.partition(";")
        if not head.startswith("thread ("):
            head, stack = "", body
        thread = re.sub(r" \d+$", "", head.split(": ", 1)[-1]) if head else "?"
        total += count
        threads[thread] += count
        frames = [f for f in (_frame_name(f) for f in stack.split(";")) if f] if stack else []
        for name in set(frames):
            inclusive[name] += count
        if frames:
            own[frames[-1]] += count
        label = next((lb for lb, needles in PROFILE_GROUPS if any(n in stack for n in needles)), OTHER)
        if label == OTHER and thread == "MainThread":
            label = HTTP_LABEL if any(n in stack for n in FRAMEWORK_NEEDLES) else LOOP_LABEL
        elif label == OTHER and thread == "forewarn-deliveries":
            label = WORKER_LABEL
        groups[label] += count
    return total, threads, inclusive, own, groups


def _frame_name(frame: str) -> str:
    """'func (/abs/path/site-packages/pkg/mod.py:12)' -> 'func (pkg/mod.py)'."""
    m = re.match(r"^(.*?) \((.*?)(?::\d+)?\)$", frame.strip())
    if not m:
        return frame.strip()
    func, path = m.group(1), m.group(2)
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    path = re.sub(r"^\.\d+/", "", path)
    return f"{func} ({path})"


async def profiled(server: Server, seconds: float, out_dir: Path, name: str,
                   load: Callable[[], Any]) -> dict[str, Any]:
    """Run ``load()`` (a coroutine factory) with ``py-spy record --gil`` attached to the server for
    ``seconds``; return the shares of the samples (those in which some server thread held the GIL)."""
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        return {"skipped": "py-spy not installed (pip install py-spy)"}
    raw = out_dir / f"pyspy-{name}.txt"
    rate = 250
    cmd = [py_spy, "record", "--pid", str(server.pid), "--format", "raw", "--rate", str(rate), "--nonblocking",
           "--gil", "--threads", "--duration", str(math.ceil(seconds)), "-o", str(raw)]
    spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    await asyncio.sleep(0.7)  # py-spy attaches
    result = await load()
    try:
        _, err = await asyncio.to_thread(spy.communicate, None, 60)
    except subprocess.TimeoutExpired:
        spy.kill()
        _, err = spy.communicate()
    if not raw.exists():
        return {"skipped": f"py-spy failed: {err.decode(errors='replace')[-500:]}"}
    lines = raw.read_text(encoding="utf-8", errors="replace").splitlines()
    total, threads, inclusive, own, groups = parse_collapsed(lines)

    def share(n: int) -> float:
        return round(100 * n / total, 1) if total else 0.0

    return {
        "load_during_profile": result, "samples": total,
        "gil_held_fraction": round(total / (rate * math.ceil(seconds)), 2),
        "threads_pct": {k: share(v) for k, v in threads.most_common()},
        "groups_pct": {label: share(groups[label]) for label, _ in PROFILE_GROUPS},
        "top_inclusive_pct": [[f, share(n)] for f, n in inclusive.most_common(60)],
        "top_self_pct": [[f, share(n)] for f, n in own.most_common(30)],
    }


# ---------------------------------------------------------------------------------------------- report
def machine_info() -> dict[str, Any]:
    versions: dict[str, str] = {}
    for mod in ("fastapi", "starlette", "uvicorn", "pydantic", "httpx", "shapely", "jwt", "uvloop", "httptools"):
        with contextlib.suppress(ImportError):
            versions[mod] = str(__import__(mod).__version__)
    import sqlite3

    versions["sqlite"] = sqlite3.sqlite_version
    return host_info(versions) | {"loadavg_before": os.getloadavg()[0]}


def src_state() -> str:
    """The tree of src/ at HEAD plus a hash of any uncommitted change to it: equal strings, same code."""
    diff = git("diff", "HEAD", "--", "../src")
    return git("rev-parse", "HEAD:src") + ("+" + hashlib.sha256(diff.encode()).hexdigest()[:16] if diff else "")


def _fmt(v: float | None, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:,.{digits}f}"


def _load_text(load: dict[str, Any]) -> str:
    if "filings_per_s" in load:
        return f"{load['filings_per_s']:,.0f} filings/s, p99 {_fmt(load['p99_ms'], 0)} ms"
    return f"{load['rate_per_s']:g} notices/s, delivery p99 {_fmt(load['p99_ms'], 0)} ms"


def verdict_lines(doc: dict[str, Any]) -> list[str]:
    out = []
    for workload, target in (("non-overlapping", TARGET_NON_OVERLAPPING), ("overlapping", TARGET_OVERLAPPING)):
        runs = [r for r in doc["filings"] if r["workload"] == workload]
        if not runs:
            continue
        best = max(runs, key=lambda r: r["filings_per_s"])
        rate = best["filings_per_s"]
        met = "met" if rate >= target else f"missed: {rate / target:.0%} of the target, {target / rate:.1f}x short"
        anchor = "120-150/s at p50 20 ms" if workload == "non-overlapping" else "5-30/s"
        out.append(f"- {workload}: best {_fmt(rate)} filings/s (concurrency {best['concurrency']}, p50 "
                   f"{_fmt(best['p50_ms'], 2)} ms, p99 {_fmt(best['p99_ms'], 2)} ms); target >= {target:,.0f}/s: "
                   f"{met}; anchor DSS {anchor}: {rate / (135 if workload == 'non-overlapping' else 17.5):.1f}x "
                   "its midpoint.")
    for d in doc["deliveries"]:
        p99 = d["p99_ms"]
        met = "met" if p99 < TARGET_DELIVERY_P99_MS else f"missed by {p99 - TARGET_DELIVERY_P99_MS:,.1f} ms"
        out.append(f"- delivery to {d['subscribers']} SSE subscribers at {d['rate_per_s']:g} notices/s: p99 "
                   f"{_fmt(p99, 2)} ms; target < {TARGET_DELIVERY_P99_MS:.0f} ms: {met}; F3548 allows 1,000 ms "
                   f"({'within' if p99 < 1000 else 'beyond'} it); {d['missing']} deliveries missing.")
    return out


def floor_lines(doc: dict[str, Any]) -> list[str]:
    """The floor phase: the same requests to routes that stop the filing early (bench/floor_app.py)."""
    rows = doc.get("floor") or []
    if not rows:
        return []
    real = [r for r in doc["filings"] if r["workload"] == "non-overlapping" and r["concurrency"] == 10]
    lines = ["Floor of the HTTP path (bench/floor_app.py: Forewarn's own application, a second server process on "
             "the same database, pinned like the first, with three routes that take the same request as "
             "`POST /v1/operations` and stop early; the same non-overlapping bodies and tokens, concurrency 10). "
             "Each rate bounds what the real route could reach in one process on this core if the rest of the "
             "filing cost nothing:", "",
             "| route | what it does | requests/s | p50 (ms) | p99 (ms) | server CPU ms/request | errors | "
             "other processes + steal (cores) |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| `{r['route']}` | {r['what']} | {_fmt(r['filings_per_s'])} | {_fmt(r['p50_ms'], 2)} | "
                     f"{_fmt(r['p99_ms'], 2)} | {_fmt(r['server_cpu_ms_per_filing'], 2)} | {r['errors']} | "
                     f"{r['other_processes_cpu_cores']:.2f} + {r['steal_cores']:.2f} |")
    for r in real:
        lines.append(f"| `/v1/operations` (above) | the whole filing, non-overlapping | {_fmt(r['filings_per_s'])} | "
                     f"{_fmt(r['p50_ms'], 2)} | {_fmt(r['p99_ms'], 2)} | {_fmt(r['server_cpu_ms_per_filing'], 2)} | "
                     f"{r['errors']} | {r['other_processes_cpu_cores']:.2f} + {r['steal_cores']:.2f} |")
    lines.append("")
    machine = doc.get("machine_floor") or []
    if machine:
        lines += [f"The whole machine ({doc['machine']['nproc']} cores, nothing pinned: the server processes and the "
                  f"load generator may each run on every core; concurrency {MACHINE_CONCURRENCY}): bench/floor_app.py "
                  "with one uvicorn worker process per core, then the real server (one process) with every core "
                  "allowed. The floor rows bound what any number of server processes sharing nothing could answer "
                  "here beside this load generator if the filing itself cost nothing:", "",
                  "| route | server processes | requests/s | p50 (ms) | p99 (ms) | server CPU ms/request | "
                  "server CPU (cores) | client CPU (cores) | errors | other processes + steal (cores) |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in machine:
            lines.append(f"| `{r['route']}` | {r['server_processes']} | {_fmt(r['filings_per_s'])} | "
                         f"{_fmt(r['p50_ms'], 2)} | {_fmt(r['p99_ms'], 2)} | "
                         f"{_fmt(r['server_cpu_ms_per_filing'], 2)} | {r['server_cpu_share_of_one_core']:.2f} | "
                         f"{r['client_cpu_share_of_one_core']:.2f} | {r['errors']} | "
                         f"{r['other_processes_cpu_cores']:.2f} + {r['steal_cores']:.2f} |")
        lines.append("")
    return lines


def render_markdown(doc: dict[str, Any]) -> str:
    m, w = doc["machine"], doc["workload"]
    lines = [SECTION_TITLE, ""]
    dirty = ""
    if doc["src_dirty"]:
        changed = ", ".join(line.split()[-1] for line in doc["src_uncommitted"].splitlines())
        dirty = f" + uncommitted changes to {changed}, diff sha256 {doc['src_diff_sha256']}"
    lines.append(f"Command: `{doc['command']}` (commit {doc['commit']}{dirty}, {m['date']}; the whole run took "
                 f"{doc['elapsed_s']:.0f} s; forewarn imported from `{doc['forewarn_imported_from']}`).")
    if doc.get("src_state_after_imports", doc["src_state"]) != doc["src_state"]:
        lines.append("")
        lines.append("**src/ changed while this run was starting: the server and the in-process measurements may "
                     "not have loaded the same code; rerun.**")
    lines.append("")
    lines.append(f"Machine: {m['cpu']}, {m['nproc']} cores, {m['memory_gib']} GiB RAM; Python {m['python']}; "
                 f"`{m['uname']}`; SQLite {m['versions'].get('sqlite')}, FastAPI {m['versions'].get('fastapi')}, "
                 f"uvicorn {m['versions'].get('uvicorn')} (uvloop, httptools), pydantic "
                 f"{m['versions'].get('pydantic')}. Server and load generator share the machine: "
                 f"{doc['cpu_placement']}. Load average (1 min) before / after the run: "
                 f"{m['loadavg_before']:.2f} / {m.get('loadavg_after', math.nan):.2f}.")
    lines.append("")
    lines.append(
        "Setup: a real `forewarn serve` subprocess (one uvicorn process, SQLite WAL file with `synchronous = "
        f"{w.get('sqlite_synchronous', 'full').upper()}`, delivery worker running, "
        "uvicorn access log on as shipped) on a fresh database; the admin party created with `forewarn party add`, "
        f"the {len(FILERS)} filing parties, the notifier and {w['subscribers']} subscribers through the admin API; "
        f"{w['preload']:,} operations stored before timing ({doc['preload']['filings_per_s']:,.0f}/s over HTTP, "
        "untimed): 250 clusters x 4 corner operations of 4 parties, 2 km circles, 1,000-3,000 m, one 24 h window. "
        f"Agreement `mou-file` binds p0..p7 (minima 1,000 m / 300 m / 60 s, `deliver: {w['deliver']}`, so each "
        "filing stores 7 deliveries in its outbox). Load generator: asyncio streams (a minimal HTTP/1.1 client and "
        "event-stream reader; httpx for setup) on loopback, closed loop, one keep-alive connection per worker; latency "
        "from just before the POST is sent to the end of the response. Non-overlapping filing: 2 km circle at a "
        "cluster centre, its own 60 s slot (0 conflicts). "
        "Overlapping filing: 13 km circle at a cluster centre meeting the cluster's 4 stored operations of other "
        "parties (4 conflicts); the new filing is the one asked to adjust, so each answer also carries its "
        "resolutions (searched and verified by the service). The store grows by the filings of each phase "
        "(the 'stored' column).")
    lines.append("")
    lines.append("| workload | concurrency | stored at start | filings | errors | filings/s | p50 (ms) | p90 (ms) | "
                 "p99 (ms) | max (ms) | server CPU ms/filing | server CPU (cores) | client CPU (cores) | "
                 "other processes + steal (cores) | conflicts per filing | resolutions found |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for r in doc["filings"]:
        noisy = " *" if r["other_processes_cpu_cores"] + r["steal_cores"] > NOISY_CORES else ""
        conf = ", ".join(f"{k}: {v:,}" for k, v in r["conflicts_per_filing"].items())
        res = ", ".join(f"{k}: {v:,}" for k, v in r["resolution_options"].items()) or "-"
        lines.append(
            f"| {r['workload']}{noisy} | {r['concurrency']} | {r['stored_at_start']:,} | {r['ok']:,} | {r['errors']} | "
            f"{_fmt(r['filings_per_s'])} | {_fmt(r['p50_ms'], 2)} | {_fmt(r['p90_ms'], 2)} | {_fmt(r['p99_ms'], 2)} | "
            f"{_fmt(r['max_ms'], 2)} | {_fmt(r['server_cpu_ms_per_filing'], 2)} | "
            f"{r['server_cpu_share_of_one_core']:.2f} | {r['client_cpu_share_of_one_core']:.2f} | "
            f"{r['other_processes_cpu_cores']:.2f} + {r['steal_cores']:.2f} | {conf} | {res} |")
    lines.append("")
    idle = [r for r in doc["filings"] if "idle SSE streams" in r["workload"]]
    if idle:
        lines.append(f"The row '{idle[0]['workload']}' repeats the non-overlapping workload at concurrency 10 while "
                     "the subscribers hold `GET /v1/stream` open; these filings owe them nothing "
                     f"({idle[0]['events_received_by_idle_streams']} events received): the difference from the "
                     "rows without open streams is what idle streams cost the filings.")
        lines.append("")
    if doc["deliveries"]:
        lines.append(f"Notice-to-delivery: {w['subscribers']} subscriber parties each holding `GET /v1/stream` open "
                     "(own token, own connection); the notifier (bound to all of them by `mou-sse`) files "
                     "non-conflicting notices at a fixed rate (open loop); latency = event parsed at the "
                     "subscriber minus just before the notice's POST was sent, over every (notice, subscriber) "
                     "pair.")
        lines.append("")
        lines.append("| subscribers | notices | rate (/s) | deliveries received / expected | missing | duplicates | "
                     "p50 (ms) | p90 (ms) | p99 (ms) | max (ms) | notice POST p50 / p99 (ms) | server CPU (cores) | "
                     "other processes + steal (cores) |")
        lines.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
        for d in doc["deliveries"]:
            noisy = " *" if d["other_processes_cpu_cores"] + d["steal_cores"] > NOISY_CORES else ""
            lines.append(
                f"| {d['subscribers']}{noisy} | {d['notices']} | {d['rate_per_s']:g} | {d['deliveries_received']:,} / "
                f"{d['deliveries_expected']:,} | {d['missing']} | {d['duplicates']} | {_fmt(d['p50_ms'], 2)} | "
                f"{_fmt(d['p90_ms'], 2)} | {_fmt(d['p99_ms'], 2)} | {_fmt(d['max_ms'], 2)} | "
                f"{_fmt(d['notice_post']['p50_ms'], 2)} / {_fmt(d['notice_post']['p99_ms'], 2)} | "
                f"{d['server_cpu_share_of_one_core']:.2f} | {d['other_processes_cpu_cores']:.2f} + "
                f"{d['steal_cores']:.2f} |")
        lines.append("")
    noisy_rows = [r for r in [*doc["filings"], *doc["deliveries"]]
                  if r["other_processes_cpu_cores"] + r["steal_cores"] > NOISY_CORES]
    if noisy_rows:
        lines.append(f"\\* CPU taken by other processes or stolen by the hypervisor (this is a shared VM) exceeded "
                     f"{NOISY_CORES} cores during the phase: its numbers understate the service.")
        lines.append("")
    lines.append(f"Anchor: {ANCHOR}. Targets: >= {TARGET_NON_OVERLAPPING:,.0f} filings/s non-overlapping, "
                 f">= {TARGET_OVERLAPPING:,.0f}/s overlapping, delivery p99 < {TARGET_DELIVERY_P99_MS:.0f} ms.")
    lines.append("")
    lines += verdict_lines(doc)
    lines.append("")
    lines += floor_lines(doc)
    prof = doc.get("profile") or {}
    skipped = {p["skipped"] for p in prof.values() if "skipped" in p}
    if skipped and not any("groups_pct" in p for p in prof.values()):
        lines.append(f"Profile of the server: not taken ({'; '.join(sorted(skipped))}).")
        lines.append("")
    elif prof:
        lines.append("Profile of the server under each filing workload (a separate pass at concurrency 10 with "
                     "`py-spy record --gil --nonblocking` attached, 250 Hz; share of the samples in which a server "
                     "thread held the GIL; each sample counted once, in the first group of this list found on its "
                     "stack; the deliveries column: the highest delivery rate, 50 subscribers):")
        lines.append("")
        labels = [label for label, _ in PROFILE_GROUPS]
        names = [n for n in ("non-overlapping", "overlapping", "deliveries") if n in prof and "groups_pct" in prof[n]]
        if names:
            lines.append("| where the server spends its time | " + " | ".join(names) + " |")
            lines.append("|---|" + "---:|" * len(names))
            for label in labels:
                lines.append(f"| {label} | " + " | ".join(f"{prof[n]['groups_pct'][label]:.1f}%" for n in names)
                             + " |")
            lines.append("| (GIL-holding samples; load while profiled) | " + " | ".join(
                f"{prof[n]['samples']:,}; " + _load_text(prof[n]['load_during_profile']) for n in names) + " |")
            lines.append("")
    inproc = [r for r in doc.get("inprocess", []) if "shares_pct" in r]
    if inproc:
        lines.append("Without HTTP: `Forewarn.notify` called directly in one thread (same parties, agreements and "
                     "1,000 stored operations, fresh SQLite file; `--inprocess` filings timed plainly, as many "
                     "again under cProfile for the shares: cumulative time of each step as a share of notify). "
                     "Compare ms per notify with the server CPU ms per filing above: the difference is HTTP, "
                     "FastAPI, authentication, thread hand-offs and JSON.")
        lines.append("")
        lines.append("| step of Forewarn.notify | " + " | ".join(r["workload"] for r in inproc) + " |")
        lines.append("|---|" + "---:|" * len(inproc))
        lines.append("| **ms per notify (no profiler)** | " + " | ".join(
            f"**{r['ms_per_notify']:.2f}**" for r in inproc) + " |")
        for label in inproc[0]["shares_pct"]:
            lines.append(f"| {label} | " + " | ".join(f"{r['shares_pct'].get(label, 0.0):.1f}%" for r in inproc)
                         + " |")
        lines.append("")
    if doc.get("findings"):
        lines.append("Findings:")
        lines.append("")
        lines += [f"- {f}" for f in doc["findings"]]
        lines.append("")
    lines.append("Full numbers, statuses and the top functions of each profile in bench/results/api.json.")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- main
async def run(args: argparse.Namespace, server: Server, admin_creds: dict[str, Any], work: Path,
              doc: dict[str, Any]) -> None:
    layout = Layout(t0=(datetime.now(UTC) + timedelta(hours=3)).replace(second=0, microsecond=0))
    max_conc = max(args.concurrency)
    limits = httpx.Limits(max_connections=max_conc, max_keepalive_connections=max_conc)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=60.0) as client:
        headers = await setup(client, admin_creds, args.subscribers, args.deliver)
        print(f"parties ready ({len(headers)})", file=sys.stderr)
        doc["preload"] = await preload(client, headers, layout, args.preload)
        print(f"preloaded {args.preload} in {doc['preload']['wall_s']} s", file=sys.stderr)
        counters = {"non-overlapping": Counter1(), "overlapping": Counter1()}
        expect = {"non-overlapping": 0, "overlapping": 4}
        stored = args.preload

        for conc in args.concurrency:
            for workload in args.workloads:
                def make(i: int, wl: str = workload) -> tuple[str, dict[str, Any]]:
                    return layout.filing(wl, i)

                # fresh connections per phase: connections idle past uvicorn's keep-alive (5 s) would race the
                # server closing them
                waited = await wait_quiet(server, args.quiet_wait)
                r = await run_filings(server, headers, make, conc, args.duration, args.max_filings,
                                      counters[workload], expect[workload])
                r = {"workload": workload, "stored_at_start": stored, **r, "waited_for_quiet_s": waited}
                stored += r["ok"]
                doc["filings"].append(r)
                print(f"{workload} c={conc}: {r['ok']} ok, {r['errors']} errors, {r['filings_per_s']}/s, "
                      f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, server cpu {r['server_cpu_share_of_one_core']}, "
                      f"client cpu {r['client_cpu_share_of_one_core']}", file=sys.stderr)

        last_seen: dict[int, int] = {}
        if args.idle_streams_phase and "non-overlapping" in args.workloads:
            # the same filings while the 50 subscribers hold their streams open (they are owed nothing)
            waited = await wait_quiet(server, args.quiet_wait)
            async with idle_streams(server, headers, args.subscribers, last_seen) as received:
                r = await run_filings(server, headers, partial(layout.filing, "non-overlapping"), 10, args.duration,
                                      args.max_filings, counters["non-overlapping"], 0)
            r = {"workload": f"non-overlapping, {args.subscribers} idle SSE streams open", "stored_at_start": stored,
                 **r, "events_received_by_idle_streams": received[0], "waited_for_quiet_s": waited}
            stored += r["ok"]
            doc["filings"].append(r)
            print(f"{r['workload']} c=10: {r['ok']} ok, {r['filings_per_s']}/s, p50 {r['p50_ms']} ms, "
                  f"p99 {r['p99_ms']} ms", file=sys.stderr)

        first = 0
        for rate in args.rates:
            count = max(1, round(rate * args.notice_seconds))
            waited = await wait_quiet(server, args.quiet_wait)
            d = await run_deliveries(server, headers, layout, args.subscribers, count, rate, first, last_seen)
            d["waited_for_quiet_s"] = waited
            first += count
            doc["deliveries"].append(d)
            print(f"deliveries @ {rate}/s: p50 {d['p50_ms']} ms, p99 {d['p99_ms']} ms, max {d['max_ms']} ms, "
                  f"missing {d['missing']}", file=sys.stderr)

        if args.profile_seconds > 0:
            for workload in args.workloads:
                def make_p(i: int, wl: str = workload) -> tuple[str, dict[str, Any]]:
                    return layout.filing(wl, i)

                async def load_p(mk: Callable[[int], tuple[str, dict[str, Any]]] = make_p,
                                 wl: str = workload) -> dict[str, Any]:
                    r = await run_filings(server, headers, mk, 10, args.profile_seconds, 10**9, counters[wl],
                                          expect[wl])
                    return {k: r[k] for k in ("concurrency", "ok", "filings_per_s", "p50_ms", "p99_ms")}

                await wait_quiet(server, args.quiet_wait)
                doc["profile"][workload] = await profiled(server, args.profile_seconds + 1, work, workload, load_p)
                print(f"profiled {workload}", file=sys.stderr)
            if args.rates:
                rate = max(args.rates)
                count = max(1, round(rate * args.profile_seconds))

                async def load_d() -> dict[str, Any]:
                    d = await run_deliveries(server, headers, layout, args.subscribers, count, rate, first,
                                             last_seen)
                    return {k: d[k] for k in ("subscribers", "notices", "rate_per_s", "p50_ms", "p99_ms",
                                              "missing")}

                await wait_quiet(server, args.quiet_wait)
                doc["profile"]["deliveries"] = await profiled(server, args.profile_seconds + 4, work,
                                                              "deliveries", load_d)
                print("profiled deliveries", file=sys.stderr)
    doc["server"] = {"rss_mib_end": round(server.rss_mib(), 1), "access_log_lines": access_log_lines(server)}
    if args.floor_seconds > 0 and "non-overlapping" in args.workloads:
        doc["floor"] = await floor_phase(args, server, headers, layout)
        if (os.cpu_count() or 1) >= 2:
            doc["machine_floor"] = await machine_floor_phase(args, server, headers, layout,
                                                             counters["non-overlapping"])


FLOOR_ROUTES = {
    "/floor/empty": "HTTP stack only: uvicorn, Starlette, routing, request-id middleware, access log",
    "/floor/parsed": "+ the real route's dependencies (bearer token, signature headers, Idempotency-Key), "
                     "OperationIn parsed, an empty NoticeOutcome serialised",
    "/floor/validated": "+ Forewarn.validate (party read, footprint shape, geodesic area, horizon)",
}


def floor_request(layout: Layout) -> Callable[[int], tuple[str, dict[str, Any]]]:
    """The i-th request body for a floor route: the non-overlapping filings over again (a floor route stores
    nothing, so the bodies may repeat; the stored workload's own indices are left for the real filings)."""
    size = CLUSTERS * (SLOTS // 2)

    def make(i: int) -> tuple[str, dict[str, Any]]:
        return layout.filing("non-overlapping", i % size)
    return make


async def floor_phase(args: argparse.Namespace, server: Server, headers: dict[str, dict[str, str]],
                      layout: Layout) -> list[dict[str, Any]]:
    """The same non-overlapping requests, at concurrency 10, to the routes of bench/floor_app.py (a second
    server on the same database, pinned like the first, started once the first is idle): each stops the filing
    earlier, so its rate bounds what ``POST /v1/operations`` could reach in this process on this core."""
    floor = Server(server.db)
    floor.start(args.server_cpus, [sys.executable, str(BENCH_DIR / "floor_app.py")])
    rows: list[dict[str, Any]] = []
    try:
        for route, what in FLOOR_ROUTES.items():
            waited = await wait_quiet(floor, args.quiet_wait)
            r = await run_filings(floor, headers, floor_request(layout), 10, args.floor_seconds, args.max_filings,
                                  Counter1(), 0, path=route)
            rows.append({"route": route, "what": what, **r, "waited_for_quiet_s": waited})
            print(f"floor {route} c=10: {r['ok']} ok, {r['errors']} errors, {r['filings_per_s']}/s, "
                  f"p50 {r['p50_ms']} ms, server cpu ms/request {r['server_cpu_ms_per_filing']}", file=sys.stderr)
    finally:
        floor.stop()
    return rows


MACHINE_FLOOR_ROUTES = ("/floor/empty", "/floor/validated")
MACHINE_CONCURRENCY = 32


def set_tree_affinity(pid: int, cpus: set[int]) -> None:
    """Allow every thread of ``pid`` (and of the processes under it) on ``cpus``."""
    for p in process_tree(pid):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            for task in os.listdir(f"/proc/{p}/task"):
                with contextlib.suppress(ProcessLookupError):
                    os.sched_setaffinity(int(task), cpus)


async def machine_floor_phase(args: argparse.Namespace, server: Server, headers: dict[str, dict[str, str]],
                              layout: Layout, counter: Counter1) -> list[dict[str, Any]]:
    """The whole machine, nothing pinned (server and load generator may each run on every core), concurrency
    32: bench/floor_app.py with one uvicorn worker process per core on ``/floor/empty`` and ``/floor/validated``,
    then the real server (one process) on ``POST /v1/operations``. The floor rows bound what any number of
    server processes could answer on this machine, with this load generator beside them, if the filing itself
    cost nothing; the last row is what the one-process server does with every core allowed."""
    cores = set(range(os.cpu_count() or 1))
    pinned = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cores)
    rows: list[dict[str, Any]] = []
    try:
        floor = Server(server.db)
        floor.start(None, [sys.executable, str(BENCH_DIR / "floor_app.py")], ["--workers", str(len(cores))])
        try:
            for route in MACHINE_FLOOR_ROUTES:
                waited = await wait_quiet(floor, args.quiet_wait)
                r = await run_filings(floor, headers, floor_request(layout), MACHINE_CONCURRENCY,
                                      args.floor_seconds, args.max_filings, Counter1(), 0, path=route)
                rows.append({"route": route, "what": FLOOR_ROUTES[route], "server_processes": len(cores), **r,
                             "waited_for_quiet_s": waited})
                print(f"machine floor {route} c={MACHINE_CONCURRENCY}: {r['ok']} ok, {r['errors']} errors, "
                      f"{r['filings_per_s']}/s, server cores {r['server_cpu_share_of_one_core']}", file=sys.stderr)
        finally:
            floor.stop()
        set_tree_affinity(server.pid, cores)
        waited = await wait_quiet(server, args.quiet_wait)
        r = await run_filings(server, headers, partial(layout.filing, "non-overlapping"), MACHINE_CONCURRENCY,
                              args.floor_seconds, args.max_filings, counter, 0)
        rows.append({"route": "/v1/operations", "what": "the whole filing, non-overlapping", "server_processes": 1,
                     **r, "waited_for_quiet_s": waited})
        print(f"machine /v1/operations c={MACHINE_CONCURRENCY}: {r['ok']} ok, {r['filings_per_s']}/s, server cores "
              f"{r['server_cpu_share_of_one_core']}", file=sys.stderr)
    finally:
        os.sched_setaffinity(0, pinned)
        if args.server_cpus:
            set_tree_affinity(server.pid, {int(c) for c in args.server_cpus.split(",")})
    return rows


def findings(doc: dict[str, Any]) -> list[str]:
    """Plain statements derived from the numbers (the profile shares in particular)."""
    out: list[str] = []
    for r in doc["filings"]:
        if r["errors"]:
            out.append(f"{r['workload']} at concurrency {r['concurrency']}: {r['errors']} errors {r['statuses']}.")
        if r.get("all_as_expected") is False:
            out.append(f"{r['workload']} at concurrency {r['concurrency']}: conflicts per filing were "
                       f"{r['conflicts_per_filing']}, expected {r['expected_conflicts_per_filing']} for every one.")
    for name, prof in (doc.get("profile") or {}).items():
        if "groups_pct" not in prof:
            continue
        top = sorted(prof["groups_pct"].items(), key=lambda kv: -kv[1])[:3]
        out.append(f"{name}: the largest shares of server samples are " +
                   "; ".join(f"{label} {pct:.0f}%" for label, pct in top) + ".")
    floor = {r["route"]: r for r in doc.get("floor") or []}
    if "/floor/validated" in floor and "/floor/empty" in floor:
        v, e = floor["/floor/validated"], floor["/floor/empty"]
        verdict = "below" if v["filings_per_s"] < TARGET_NON_OVERLAPPING else "above"
        out.append(f"floor: this server process answers at most {e['filings_per_s']:,.0f} requests/s on its core "
                   f"with an empty route ({e['server_cpu_ms_per_filing']} ms of CPU each), and "
                   f"{v['filings_per_s']:,.0f}/s once the filing's request is authenticated, parsed and validated "
                   f"({v['server_cpu_ms_per_filing']} ms), {verdict} the {TARGET_NON_OVERLAPPING:,.0f}/s target "
                   "before any detection, persistence, ledger entry or delivery.")
    machine = {r["route"]: r for r in doc.get("machine_floor") or []}
    if "/floor/validated" in machine:
        v = machine["/floor/validated"]
        verdict = "below" if v["filings_per_s"] < TARGET_NON_OVERLAPPING else "above"
        out.append(f"whole machine: {v['server_processes']} server processes answer "
                   f"{v['filings_per_s']:,.0f} authenticated, parsed and validated requests/s "
                   f"({v['server_cpu_share_of_one_core']:.2f} cores of server CPU, "
                   f"{v['client_cpu_share_of_one_core']:.2f} of load generator), {verdict} the "
                   f"{TARGET_NON_OVERLAPPING:,.0f}/s target before any detection, persistence, ledger entry or "
                   "delivery.")
    if "/v1/operations" in machine:
        r = machine["/v1/operations"]
        out.append(f"whole machine: the one-process server with every core allowed files {r['filings_per_s']:,.0f} "
                   f"non-overlapping operations/s on {r['server_cpu_share_of_one_core']:.2f} cores "
                   f"({r['server_cpu_ms_per_filing']} ms of CPU each).")
    return out


# ---------------------------------------------------------------------------------------------- in-process
# (service, file, function, caller function or None): cumulative time of the function (only the calls made from
# that caller when one is given), as a share of Forewarn.notify
INPROC_ROWS: list[tuple[str, str, str, str | None]] = [
    ("validate (check_volume: footprint shape, geodesic area, horizon)", "service.py", "validate", "filing"),
    ("get_operation (does the id exist?)", "sqlite.py", "get_operation", "filing"),
    ("detect (the filing's conflicts)", "conflicts.py", "detect", "_evaluate"),
    ("site_warnings + list_sites", "service.py", "_evaluate", None),  # replaced below by its parts
    ("resolutions (_resolutions -> propose)", "service.py", "_resolutions", "_evaluate"),
    ("_impacts (per bound party)", "service.py", "_impacts", "_evaluate"),
    ("add_operation_version (INSERTs)", "sqlite.py", "add_operation_version", "filing"),
    ("add_notice (notice + conflicts INSERTs, outcome JSON)", "sqlite.py", "add_notice", "_record_notice"),
    ("list_parties (every party parsed, per filing)", "sqlite.py", "list_parties", "_record_notice"),
    ("list_subscriptions", "sqlite.py", "list_subscriptions", "_record_notice"),
    ("plan_deliveries (a payload per recipient)", "deliveries.py", "plan_deliveries", "_record_notice"),
    ("add_deliveries (outbox INSERTs, payload JSON)", "sqlite.py", "add_deliveries", "_record_notice"),
    ("ledger entries (Ledger.append_many, which Ledger.append calls: canonical JSON, hashes, batched INSERT)",
     "recorder.py", "append_many", None),
    ("transaction enter/exit (BEGIN IMMEDIATE; the checkpoint signature; COMMIT with fsync)", "contextlib.py",
     "__exit__", None),
    ("airspace.put (live picture, index)", "airspace.py", "put", "_live"),
]


def _inprocess_worker(workload: str, count: int) -> dict[str, Any]:
    """Forewarn.notify called directly (no HTTP, one thread) on a fresh SQLite file with the same parties,
    agreements and preload as the HTTP run: milliseconds per filing, then a cProfile pass for the shares."""
    import cProfile
    import pstats

    sys.path.insert(0, str(SRC_DIR))
    from forewarn.core.model import Agreement, Operation, Party
    from forewarn.http.schemas import OperationIn
    from forewarn.service.compose import build_service
    from forewarn.service.settings import Settings

    work = Path(tempfile.mkdtemp(prefix="forewarn-bench-api-inproc-"))
    try:
        settings = Settings(db=work / "inproc.sqlite")
        svc = build_service(settings)
        ids = [*FILERS, "n0", *(f"s{k:02d}" for k in range(50))]
        for pid in ids:
            svc.put_party(Party(id=pid, name=pid.upper()))
        common = {"min_notice_s": 600, "ack_deadline_s": 3600, "default_minima": MINIMA}
        svc.put_agreement(Agreement.model_validate({"id": "mou-file", "name": "f", "parties": FILERS, **common}))
        svc.put_agreement(Agreement.model_validate({"id": "mou-sse", "name": "s", "parties": ids[8:], **common}))
        layout = Layout(t0=(datetime.now(UTC) + timedelta(hours=3)).replace(second=0, microsecond=0))

        def operation(party: str, body: dict[str, Any]) -> Operation:
            b = OperationIn.model_validate(body)
            return Operation(id=b.id, party_id=party, activity_class=b.activity_class, volumes=b.volumes)

        for k in range(4 * CLUSTERS):
            svc.notify(operation(*layout.preload(k)), datetime.now(UTC))

        def make(i: int) -> Operation:
            if workload == "notice to 50 subscribers":
                return operation("n0", layout.notice(i))
            return operation(*layout.filing(workload, i))

        timed = [make(i) for i in range(count)]
        t = time.perf_counter()
        for op in timed:
            svc.notify(op, datetime.now(UTC))
        plain_ms = 1000 * (time.perf_counter() - t) / count
        profiled_ops = [make(i) for i in range(count, 2 * count)]
        prof = cProfile.Profile()
        prof.enable()
        for op in profiled_ops:
            svc.notify(op, datetime.now(UTC))
        prof.disable()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    stats: dict[Any, Any] = pstats.Stats(prof).stats  # type: ignore[attr-defined]

    def cum(file: str, func: str, caller: str | None) -> float:
        total = 0.0
        for (path, _line, name), (_cc, _nc, _tt, ct, callers) in stats.items():
            if name != func or not path.endswith(file):
                continue
            if caller is None:
                total += ct
            else:
                total += sum(v[3] for (_p, _l, n), v in callers.items() if n == caller)
        return total

    notify_s = cum("service.py", "notify", None)
    rows: dict[str, float] = {}
    for label, file, func, caller in INPROC_ROWS:
        if func == "_evaluate":
            value = cum("sites.py", "site_warnings", "_evaluate") + cum("sqlite.py", "list_sites", "_evaluate")
        elif func == "__exit__":
            value = cum("sqlite.py", "transaction", None)
        else:
            value = cum(file, func, caller)
        rows[label] = round(100 * value / notify_s, 1) if notify_s else 0.0
    rows["rest of notify (own code, model_copy, NoticeOutcome, listeners)"] = round(100 - sum(rows.values()), 1)
    top = sorted(((ct, f"{name} ({Path(path).name}:{line})") for (path, line, name), (_c, _n, _t, ct, _cl)
                  in stats.items()), reverse=True)[:30]
    return {"workload": workload, "filings": count, "stored_at_start": 4 * CLUSTERS,
            "ms_per_notify": round(plain_ms, 2),
            "ms_per_notify_under_cprofile": round(1000 * notify_s / count, 2), "shares_pct": rows,
            "top_cumulative_ms_per_filing": [[name, round(1000 * ct / count, 3)] for ct, name in top]}


def inprocess(workloads: list[str], count: int, quiet_wait: float) -> list[dict[str, Any]]:
    out = []
    for workload in workloads:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < quiet_wait:  # as wait_quiet, without a server: everything else is noise
            (busy0, steal0), own0 = machine_cpu(), time.process_time()
            time.sleep(3.0)
            (busy1, steal1), own1 = machine_cpu(), time.process_time()
            if ((busy1 - busy0) - (own1 - own0) + (steal1 - steal0)) / 3.0 < NOISY_CORES:
                break
        n = count if workload != "overlapping" else max(1, count // 10)
        proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--inprocess-worker", workload,
                               str(n)], capture_output=True, text=True, env=forewarn_env(), check=False, timeout=600)
        if proc.returncode != 0:
            out.append({"workload": workload, "error": proc.stderr[-1500:]})
        else:
            out.append(json.loads(proc.stdout))
        print(f"in-process {workload}: {out[-1].get('ms_per_notify')} ms per notify", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preload", type=int, default=1000, help="operations stored before timing (<= 1000)")
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 10, 32],
                        help="comma-separated numbers of concurrent workers")
    parser.add_argument("--workloads", type=lambda s: s.split(","), default=["non-overlapping", "overlapping"])
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per timed phase")
    parser.add_argument("--max-filings", type=int, default=20_000, help="most filings per timed phase")
    parser.add_argument("--subscribers", type=int, default=50)
    parser.add_argument("--no-idle-streams-phase", dest="idle_streams_phase", action="store_false",
                        help="skip the non-overlapping phase with the subscribers' streams open but idle")
    parser.add_argument("--notice-seconds", type=float, default=15.0,
                        help="length of each delivery phase (rate x this many notices)")
    parser.add_argument("--rates", type=lambda s: [float(x) for x in s.split(",") if x], default=[1.0, 5.0, 10.0],
                        help="notices per second, one delivery phase per rate (empty: none)")
    parser.add_argument("--deliver", choices=["all", "affected_or_subscribed"], default="all",
                        help="deliver mode of the filing parties' agreement")
    parser.add_argument("--profile-seconds", type=float, default=8.0, help="py-spy pass per workload (0: none)")
    parser.add_argument("--floor-seconds", type=float, default=8.0,
                        help="seconds per route of the floor phase (bench/floor_app.py: the same requests to "
                        "routes that stop the filing early; 0: none)")
    parser.add_argument("--server-cpus", default="auto",
                        help="pin the server with taskset -c to these CPUs (e.g. 0) and the load generator to the "
                        "others; 'auto' (default): CPU 0 when there are 2 or more; 'none': no pinning")
    parser.add_argument("--quiet-wait", type=float, default=180.0,
                        help="before each phase, wait at most this many seconds for other processes + steal to "
                        f"stay under {NOISY_CORES} cores (a shared machine); the noise of each phase is reported")
    parser.add_argument("--sqlite-synchronous", choices=["full", "normal"], default="full",
                        help="the service's durability (FOREWARN_SQLITE_SYNCHRONOUS, for every process of the run): "
                        "full (the default, an fsync per commit) or normal (no fsync: a power loss may lose the last "
                        "commits)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (database, log, stacks)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    parser.add_argument("--md", type=Path, default=DEFAULT_MD)
    parser.add_argument("--inprocess", type=int, default=300,
                        help="filings per workload for the in-process (no HTTP) breakdown (overlapping: a tenth); "
                        "0: none")
    parser.add_argument("--inprocess-worker", nargs=2, metavar=("WORKLOAD", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inprocess_worker:
        print(json.dumps(_inprocess_worker(args.inprocess_worker[0], int(args.inprocess_worker[1]))))
        return 0
    if not 4 <= args.preload <= 4 * CLUSTERS or args.preload % 4:
        parser.error(f"--preload must be a multiple of 4 up to {4 * CLUSTERS}")

    os.environ["FOREWARN_SQLITE_SYNCHRONOUS"] = args.sqlite_synchronous  # inherited by every subprocess
    t_run = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="forewarn-bench-api-"))
    placement = "not pinned (both may use every core)"
    if args.server_cpus == "auto":
        args.server_cpus = "0" if (os.cpu_count() or 1) >= 2 and shutil.which("taskset") else None
    elif args.server_cpus == "none":
        args.server_cpus = None
    if args.server_cpus:
        server_set = {int(c) for c in args.server_cpus.split(",")}
        client_set = set(range(os.cpu_count() or 1)) - server_set
        if client_set:
            os.sched_setaffinity(0, client_set)
        placement = (f"server pinned to CPU {args.server_cpus}, load generator to CPU "
                     f"{','.join(map(str, sorted(client_set)))}")
    cmd_args = sys.argv[1:] if argv is None else argv
    doc: dict[str, Any] = {
        "benchmark": "http-api", "command": " ".join(["python bench/api.py", *cmd_args]),
        "commit": git("rev-parse", "--short", "HEAD"), "src_dirty": bool(git("status", "--short", "--", "../src")),
        "src_uncommitted": git("status", "--short", "--", "../src"),
        "src_diff_sha256": hashlib.sha256(git("diff", "HEAD", "--", "../src").encode()).hexdigest()[:16],
        "forewarn_imported_from": imported_from(), "src_state": src_state(),
        "machine": machine_info(), "cpu_placement": placement,
        "workload": {"preload": args.preload, "concurrency": args.concurrency, "duration_s": args.duration,
                     "max_filings": args.max_filings, "subscribers": args.subscribers,
                     "notice_seconds": args.notice_seconds, "rates": args.rates, "deliver": args.deliver,
                     "sqlite_synchronous": args.sqlite_synchronous,
                     "filing_parties": FILERS, "minima": MINIMA},
        "targets": {"non_overlapping_per_s": TARGET_NON_OVERLAPPING, "overlapping_per_s": TARGET_OVERLAPPING,
                    "delivery_p99_ms": TARGET_DELIVERY_P99_MS},
        "anchor": ANCHOR, "filings": [], "deliveries": [], "profile": {},
    }
    db = work / "bench.sqlite"
    admin_creds: dict[str, Any] = json.loads(cli("party", "add", "admin", "--name", "Admin", "--db", str(db),
                                                 "--scopes", "admin"))
    if args.inprocess > 0:  # first, so that every process of the run imports the code within the first minute
        doc["inprocess"] = inprocess([*args.workloads, "notice to 50 subscribers"], args.inprocess,
                                     args.quiet_wait)
    server = Server(db)
    server.start(args.server_cpus)
    doc["src_state_after_imports"] = src_state()
    if doc["src_state_after_imports"] != doc["src_state"]:
        print("warning: src/ changed while the run was importing it", file=sys.stderr)
    try:
        asyncio.run(run(args, server, admin_creds, work, doc))
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}", file=sys.stderr)
    doc["elapsed_s"] = round(time.perf_counter() - t_run, 1)
    doc["machine"]["loadavg_after"] = os.getloadavg()[0]
    doc["findings"] = findings(doc)
    for prof in doc["profile"].values():
        prof.pop("raw_file", None)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=2, allow_nan=True) + "\n", encoding="utf-8")
    args.md.write_text(render_markdown(doc), encoding="utf-8")
    print(render_markdown(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
