"""Limits of the HTTP layer: the answer to a client over a limit (429 with ``Retry-After``)."""

from __future__ import annotations

import math

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
