"""Limits of the HTTP layer: the answer to a client over a limit (429 with ``Retry-After``), the failed-attempt
limiter of the token endpoint, and the request body size limit (docs/resilience.md)."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from forewarn.http.errors import error_body, request_id
from forewarn.service.settings import Settings


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


class BodyTooLarge(HTTPException):
    """A request body over its route's limit (413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"the request body is larger than {limit} bytes")
        self.limit = limit


@dataclass(frozen=True)
class BodyLimits:
    """The largest request body per route: ``routes`` maps path prefixes to limits (the longest match wins),
    every other path gets ``default``."""

    default: int
    routes: tuple[tuple[str, int], ...] = ()

    def for_path(self, path: str) -> int:
        best = ("", self.default)
        for prefix, limit in self.routes:
            if path.startswith(prefix) and len(prefix) > len(best[0]):
                best = (prefix, limit)
        return best[1]


def _too_large(scope: Scope, limit: int) -> JSONResponse:
    rid = str(scope.get("state", {}).get("request_id", "-"))
    return JSONResponse(error_body("payload_too_large", f"the request body is larger than {limit} bytes",
                                   {"limit_bytes": limit}, rid), status_code=413,
                        headers={"X-Request-ID": rid, "Connection": "close"})


class BodyLimitMiddleware:
    """Enforces :class:`BodyLimits` while the body streams in: a ``Content-Length`` over the limit is answered 413
    before any of the body is read; a body without one (chunked) is counted as it arrives and the read that
    crosses the limit raises :class:`BodyTooLarge` (413), so no more than the limit is ever held."""

    def __init__(self, app: ASGIApp, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.for_path(scope["path"])
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _too_large(scope, limit)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracking)
        except BodyTooLarge:  # read outside FastAPI's handlers (e.g. a middleware): answer here if still possible
            if not started:
                await _too_large(scope, limit)(scope, receive, send)


def install(app: FastAPI, settings: Settings) -> None:
    """The body limits of ``settings`` on every route (the track feed has its own) and the 413 error shape."""
    limits = BodyLimits(settings.body_limit_bytes, (("/v1/tracks/", settings.body_limit_tracks_bytes),))
    app.add_middleware(BodyLimitMiddleware, limits=limits)

    @app.exception_handler(BodyTooLarge)
    async def _body_too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        return _too_large(request.scope, exc.limit)
