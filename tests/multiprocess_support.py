"""Several real ``forewarn serve`` processes on one fresh PostgreSQL database, and the CLI pointed at it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.server_support import DEV_WEBHOOKS, Server

START_HOURS_AHEAD = 4


def pg_cli(url: str, *args: str) -> str:
    """``forewarn ARGS`` on the PostgreSQL database ``url``; its standard output (fails the test on an error)."""
    proc = subprocess.run([sys.executable, "-m", "forewarn", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **DEV_WEBHOOKS, "FOREWARN_DATABASE_URL": url})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def pg_party(url: str, party_id: str, *extra: str) -> dict[str, Any]:
    """A party with credentials, added with the real CLI."""
    doc: dict[str, Any] = json.loads(pg_cli(url, "party", "add", party_id, "--name", party_id.upper(), *extra))
    return doc


@contextmanager
def servers(url: str, folder: Path, count: int, *args: str) -> Iterator[list[Server]]:
    """``count`` ``forewarn serve`` processes on the database ``url`` (logs in ``folder``), stopped at the end."""
    env = {"FOREWARN_DATABASE_URL": url}
    with ExitStack() as stack:
        started: list[Server] = []
        for i in range(count):
            server = Server(folder / f"server{i}.sqlite", args=args)
            stack.callback(server.stop)
            server.start(env)
            started.append(server)
        yield started


def webhook_deliveries(url: str) -> set[str]:
    """The ids of every delivery stored for a webhook (the primary channel) in the database ``url``."""
    import psycopg

    with psycopg.connect(url) as conn:
        return {r[0] for r in conn.execute("SELECT id FROM deliveries WHERE channel = 'primary'")}


def agree(server: Server, admin: dict[str, str], parties: list[str]) -> None:
    """One agreement binding ``parties`` (1 km, 300 m, 60 s; acknowledgement within an hour)."""
    body = {"id": "mou", "name": "MoU", "parties": parties, "ack_deadline_s": 3600, "min_notice_s": 600,
            "default_minima": {"horizontal_m": 1000, "vertical_m": 300, "time_s": 60}}
    assert httpx.post(f"{server.url}/v1/agreements", headers=admin, json=body).status_code == 201
