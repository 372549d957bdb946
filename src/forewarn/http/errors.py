"""One JSON error shape for every error: ``{"error": {"code", "message", "details", "request_id"}}``.

Domain error codes map to HTTP statuses here, once.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from forewarn.errors import ForewarnError, validation_errors

log = logging.getLogger("forewarn.http.app")

STATUS = {
    "invalid_input": 422, "not_found": 404, "forbidden": 403, "unauthenticated": 401, "stale_version": 409,
    "invalid_transition": 409, "limit_reached": 409,
}


def request_id(request: Request) -> str:
    rid: str | None = getattr(request.state, "request_id", None)
    return rid or "-"


def error_body(code: str, message: str, details: dict[str, Any], rid: str) -> dict[str, Any]:
    """The error shape."""
    return {"error": {"code": code, "message": message, "details": details, "request_id": rid}}


def _response(request: Request, status: int, code: str, message: str, details: dict[str, Any]) -> JSONResponse:
    headers = {"X-Request-ID": request_id(request)}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="forewarn"'
    return JSONResponse(error_body(code, message, details, request_id(request)), status_code=status,
                        headers=headers)


UNPARSABLE_BODY = "There was an error parsing the body"
"""FastAPI's detail when a JSON body cannot be decoded at all (its cause says why)."""


def unparsable_body_reason(exc: BaseException | None) -> str:
    """Why a JSON body could not be parsed, from the error FastAPI caught: invalid UTF-8, nesting too deep for the
    parser, an integer of more digits than Python converts (4300), or otherwise not JSON."""
    if isinstance(exc, UnicodeDecodeError):
        return f"the body is not valid UTF-8 (byte {exc.start}): JSON bodies are UTF-8 text"
    if isinstance(exc, RecursionError):
        return "the body nests JSON arrays or objects too deeply"
    if isinstance(exc, ValueError) and "digits" in str(exc):
        return "the body holds an integer with too many digits (at most 4300)"
    return "the body is not JSON"


class RequestIdMiddleware:
    """Gives every HTTP request an id (the caller's ``X-Request-ID`` when it is sane, else a new one), kept in
    ``request.state.request_id`` and echoed in the response's ``X-Request-ID`` header.

    A plain ASGI middleware: unlike ``@app.middleware("http")`` it adds no task group and no disconnect polling
    per request, which matters for long-lived event streams."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get("x-request-id", "")
        rid = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if "x-request-id" not in headers:
                    headers.append("X-Request-ID", rid)
            await send(message)

        await self.app(scope, receive, send_with_id)


def install(app: FastAPI) -> None:
    """Register the request-id middleware and the handlers that give every error the same shape."""
    app.add_middleware(RequestIdMiddleware)

    @app.exception_handler(ForewarnError)
    async def _domain(request: Request, exc: ForewarnError) -> JSONResponse:
        return _response(request, STATUS.get(exc.code, 400), exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": ".".join(str(p) for p in e.get("loc", ())), "message": str(e.get("msg", ""))}
                  for e in exc.errors()]
        return _response(request, 422, "invalid_input", "the request is not valid", {"errors": errors})

    @app.exception_handler(ValidationError)
    async def _model(request: Request, exc: ValidationError) -> JSONResponse:
        # a record built from a valid body can still break a rule across fields (e.g. one of point/polygon)
        return _response(request, 422, "invalid_input", "the request is not valid",
                         {"errors": validation_errors(exc)})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == UNPARSABLE_BODY:  # the shape of any other invalid body
            return _response(request, 422, "invalid_input", "the request is not valid",
                             {"errors": [{"field": "body", "message": unparsable_body_reason(exc.__cause__)}]})
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthenticated"}.get(exc.status_code, "http_error")
        return _response(request, exc.status_code, code, str(exc.detail), {})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error (request %s)", request_id(request))
        return _response(request, 500, "internal_error", "unexpected error; quote the request id", {})
