#!/usr/bin/env python
"""Backends and processes (issue 16): filings/s, server CPU ms per filing and delivery p99 for ``forewarn serve``
on SQLite (1 process) and PostgreSQL (1 and 2 processes: ``--workers 2``), in one run, with the workloads and
the load generator of ``bench/api.py`` (imported from it: the same airspace, preload, closed-loop filings and
SSE subscribers).

    python bench/scaling.py [--duration 10] [--concurrency 10] [--preload 200] [--json bench/results/scaling.json]

For every configuration: a fresh database (a SQLite file, or a fresh PostgreSQL database on ``--postgres``), the
admin made with the CLI, the parties and agreements through the API, ``--preload`` operations, then the
non-overlapping and overlapping filing phases (``--concurrency`` closed-loop clients for ``--duration`` s) and a
delivery phase (``--subscribers`` SSE streams, notices at ``--rate``/s). Server CPU is read from
``/proc/<pid>/stat`` of the ``forewarn serve`` process and every process under it (uvicorn's workers);
PostgreSQL's CPU from ``/proc/<pid>/stat`` of every ``postgres`` process on the machine (its backends serve
only this run), and the load generator's from this process. Nothing is pinned: on a 2-core machine the servers,
PostgreSQL and the load generator share both cores, and each phase reports how (cores used by each).
Advisory-lock contention is sampled from ``pg_stat_activity`` every 5 ms during each PostgreSQL phase: the mean
number of sessions waiting for an advisory lock (the writer lock) and the share of samples with one waiting.
SQLite with 2 processes is not run: ``forewarn serve --workers 2`` refuses it (exit 2), which the run checks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg

import api
from common import git

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


def postgres_cpu_s() -> float:
    """CPU seconds (user + system) used so far by every ``postgres`` process alive."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
                text = fh.read()
        except (FileNotFoundError, ProcessLookupError):
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        if name.startswith("postgres"):
            fields = text.rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / tick


@contextmanager
def lock_sampler(url: str | None) -> Iterator[dict[str, float]]:
    """While the block runs, sample ``pg_stat_activity`` of the database ``url`` every 5 ms: sessions waiting for
    an advisory lock (``wait_event = 'advisory'``); the mean and the share of samples with any waiting."""
    out: dict[str, float] = {}
    if url is None:
        yield out
        return
    stop, counts = threading.Event(), []

    def sample() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            while not stop.is_set():
                row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                   "AND wait_event_type = 'Lock' AND wait_event = 'advisory'").fetchone()
                counts.append(int(row[0]) if row else 0)
                time.sleep(0.005)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield out
    finally:
        stop.set()
        thread.join()
        if counts:
            out["advisory_waiters_mean"] = round(sum(counts) / len(counts), 3)
            out["share_of_samples_with_a_waiter"] = round(sum(1 for c in counts if c) / len(counts), 3)
            out["samples"] = len(counts)


def fresh_postgres(server_url: str) -> str:
    name = f"forewarn_bench_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    url = urlsplit(server_url)._replace(path="/" + name).geturl()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    return url


def drop_postgres(server_url: str, url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


async def phases(args: argparse.Namespace, server: api.Server, admin: dict[str, Any], url: str | None
                 ) -> dict[str, Any]:
    layout = api.Layout(t0=(datetime.now(UTC) + timedelta(hours=3)).replace(second=0, microsecond=0))
    out: dict[str, Any] = {"filings": [], "deliveries": None}
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=60.0) as client:
        headers = await api.setup(client, admin, args.subscribers, "all")
        await api.preload(client, headers, layout, args.preload)
    for workload, expect in (("non-overlapping", 0), ("overlapping", 4)):
        pg0, t0 = postgres_cpu_s(), time.perf_counter()
        with lock_sampler(url) as locks:
            r = await api.run_filings(server, headers, lambda i, wl=workload: layout.filing(wl, i),
                                      args.concurrency, args.duration, 10**9, api.Counter1(), expect)
        wall = time.perf_counter() - t0
        r["workload"] = workload
        r["postgres_cpu_cores"] = round((postgres_cpu_s() - pg0) / wall, 2) if url else 0.0
        r["postgres_cpu_ms_per_filing"] = (round(1000 * (postgres_cpu_s() - pg0) / r["ok"], 2)
                                           if url and r["ok"] else None)
        r["writer_lock"] = locks
        out["filings"].append(r)
        print(f"  {workload}: {r['filings_per_s']}/s, server {r['server_cpu_ms_per_filing']} ms/filing "
              f"({r['server_cpu_share_of_one_core']} cores), postgres {r['postgres_cpu_cores']} cores, "
              f"client {r['client_cpu_share_of_one_core']} cores, lock {locks}", file=sys.stderr)
    count = max(1, round(args.rate * args.notice_seconds))
    out["deliveries"] = await api.run_deliveries(server, headers, layout, args.subscribers, count, args.rate, 0, {})
    d = out["deliveries"]
    print(f"  deliveries @ {args.rate}/s to {args.subscribers}: p50 {d['p50_ms']} ms, p99 {d['p99_ms']} ms, "
          f"missing {d['missing']}", file=sys.stderr)
    return out


def configuration(args: argparse.Namespace, backend: str, workers: int, work: Path) -> dict[str, Any]:
    print(f"{backend}, {workers} process(es)", file=sys.stderr)
    url = fresh_postgres(args.postgres) if backend == "postgresql" else None
    saved = os.environ.get("FOREWARN_DATABASE_URL")
    os.environ["FOREWARN_DATABASE_URL"] = url or ""
    db = work / f"{backend}-{workers}.sqlite"
    try:
        admin = json.loads(api.cli("party", "add", "admin", "--name", "Admin", "--db", str(db), "--scopes", "admin"))
        server = api.Server(db)
        server.start(None, extra=["--workers", str(workers)])
        try:
            result = asyncio.run(phases(args, server, admin, url))
        finally:
            server.stop()
        return {"backend": backend, "processes": workers, **result}
    finally:
        if saved is None:
            os.environ.pop("FOREWARN_DATABASE_URL", None)
        else:
            os.environ["FOREWARN_DATABASE_URL"] = saved
        if url:
            drop_postgres(args.postgres, url)


def sqlite_refuses_two(work: Path) -> dict[str, Any]:
    env = {k: v for k, v in api.forewarn_env().items() if k != "FOREWARN_DATABASE_URL"}
    proc = subprocess.run([sys.executable, "-m", "forewarn", "serve", "--db", str(work / "two.sqlite"), "--workers",
                           "2"], capture_output=True, text=True, timeout=60, env=env, check=False)
    return {"backend": "sqlite", "processes": 2, "refused_exit_status": proc.returncode,
            "message": proc.stderr.strip().splitlines()[0] if proc.stderr else ""}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default=os.environ.get("FOREWARN_TEST_POSTGRES", DEFAULT_POSTGRES))
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--preload", type=int, default=200)
    parser.add_argument("--subscribers", type=int, default=50)
    parser.add_argument("--rate", type=float, default=5.0)
    parser.add_argument("--notice-seconds", type=float, default=8.0)
    parser.add_argument("--json", type=Path, default=api.BENCH_DIR / "results" / "scaling.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="forewarn-bench-scaling-"))
    doc: dict[str, Any] = {"benchmark": "scaling", "command": " ".join(["python bench/scaling.py", *sys.argv[1:]]),
                           "commit": git("rev-parse", "--short", "HEAD"), "cpus": os.cpu_count(),
                           "placement": "not pinned: servers, PostgreSQL and the load generator share every core",
                           "runs": []}
    for backend, workers in (("sqlite", 1), ("postgresql", 1), ("postgresql", 2)):
        doc["runs"].append(configuration(args, backend, workers, work))
    doc["runs"].append(sqlite_refuses_two(work))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(table(doc))
    return 0


def table(doc: dict[str, Any]) -> str:
    """The results as a Markdown table."""
    lines = ["| backend | processes | workload | filings/s | server CPU ms/filing | PostgreSQL CPU ms/filing | "
             "cores: server / postgres / client | writer-lock waiters (mean) | delivery p99 ms (50 subs) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for run in doc["runs"]:
        if "filings" not in run:
            lines.append(f"| {run['backend']} | {run['processes']} | refused (exit {run['refused_exit_status']}) "
                         "| | | | | | |")
            continue
        p99 = run["deliveries"]["p99_ms"]
        for r in run["filings"]:
            lock = r["writer_lock"].get("advisory_waiters_mean", "")
            lines.append(f"| {run['backend']} | {run['processes']} | {r['workload']} | {r['filings_per_s']} | "
                         f"{r['server_cpu_ms_per_filing']} | {r['postgres_cpu_ms_per_filing'] or ''} | "
                         f"{r['server_cpu_share_of_one_core']} / {r['postgres_cpu_cores']} / "
                         f"{r['client_cpu_share_of_one_core']} | {lock} | {p99} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
