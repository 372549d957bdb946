"""Limits of the HTTP layer: the answer to a client over a limit (429 with ``Retry-After``), the failed-attempt
limiter of the token endpoint, and the request body size limit (docs/resilience.md)."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

from fastapi import Request
from fastapi.responses import JSONResponse

from forewarn.http.errors import error_body, request_id


def too_many(request: Request, message: str, retry_after_s: float, details: dict[str, object] | None = None
             ) -> JSONResponse:
    """429 in the one error shape (code ``rate_limited``), with ``Retry-After`` in whole seconds (at least 1)."""
    wait = max(1, math.ceil(retry_after_s))
    rid = request_id(request)
    return JSONResponse(error_body("rate_limited", message, {"retry_after_s": wait, **(details or {})}, rid),
                        status_code=429, headers={"Retry-After": str(wait), "X-Request-ID": rid})


@dataclass
class _Window:
    start: float
    failures: int = 0
    refused: int = 0


@dataclass
class FailureLimiter:
    """Failed attempts per key (a client id, a source address) in fixed windows: after ``max_failures`` in one
    window of ``window_s`` seconds the key is refused until the window ends. Times are monotonic seconds, passed
    in. Memory is bounded: expired windows are dropped, and beyond ``max_keys`` the oldest ones."""

    max_failures: int
    window_s: float
    max_keys: int = 100_000
    windows: dict[str, _Window] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def blocked_for(self, key: str, now: float) -> float:
        """Seconds ``key`` is still refused (0 when it may try); a refused try is counted."""
        with self.lock:
            w = self.windows.get(key)
            if w is None or now >= w.start + self.window_s or w.failures < self.max_failures:
                return 0.0
            w.refused += 1
            return w.start + self.window_s - now

    def fail(self, key: str, now: float) -> _Window:
        """Count a failure of ``key``; its window (``failures`` == 1: the window's first, == ``max_failures``: the
        one that locks it)."""
        with self.lock:
            w = self.windows.get(key)
            if w is None or now >= w.start + self.window_s:
                self._make_room(now)
                w = self.windows[key] = _Window(start=now)
            w.failures += 1
            return w

    def succeed(self, key: str) -> None:
        with self.lock:
            self.windows.pop(key, None)

    def _make_room(self, now: float) -> None:
        if len(self.windows) < self.max_keys:
            return
        for key in [k for k, w in self.windows.items() if now >= w.start + self.window_s]:
            del self.windows[key]
        while len(self.windows) >= self.max_keys:
            del self.windows[next(iter(self.windows))]
