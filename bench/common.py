"""What every benchmark records about where it ran: the host and the state of the checkout."""

from __future__ import annotations

import contextlib
import os
import platform
import re
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


def write_section(path: Path, title: str, section: str) -> None:
    """Replace (or append) one benchmark's section of ``path`` (RESULTS.md): from its ``title`` line (``## ...``) to
    the next ``## `` heading; the other sections are left as they are."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    pattern = re.compile(rf"^{re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _m: section.rstrip("\n") + "\n\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")
