"""What every benchmark records about where it ran: the host and the state of the checkout."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent


def host_info(versions: dict[str, str]) -> dict[str, Any]:
    """uname, CPU model, core count, memory, Python version, the given library versions and the date (UTC)."""
    cpu = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = 0
    with contextlib.suppress(OSError), open("/proc/meminfo", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    return {
        "uname": " ".join(platform.uname()), "cpu": cpu, "nproc": os.cpu_count(),
        "memory_gib": round(mem / 2**30, 1), "python": sys.version.split()[0], "versions": versions,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def git(*args: str) -> str:
    """Output of a git command run in bench/ ('' when git is unavailable)."""
    try:
        out = subprocess.run(["git", "-C", str(BENCH_DIR), *args], capture_output=True, text=True, check=False)
    except OSError:
        return ""
    return out.stdout.strip()
