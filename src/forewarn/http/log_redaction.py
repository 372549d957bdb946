"""Keeping bearer tokens out of the server's logs (issue 20): uvicorn's access log (``uvicorn.access``) writes
each request's path with its query string, and its WebSocket lines (``uvicorn.error``) the socket's path with
its query string, so a token passed as ``?access_token=`` (the deprecated form of the track WebSocket) would be
written in full. :func:`install` adds a filter to both loggers that replaces the value with ``[redacted]``."""

from __future__ import annotations

import logging
import re

TOKEN_IN_TEXT = re.compile(r"((?:access_token|token)=)[^&\s\"']+", re.IGNORECASE)
"""``access_token=VALUE`` (or ``token=VALUE``) in a query string or a log line."""

LOGGERS = ("uvicorn.access", "uvicorn.error", "uvicorn")


def redact(text: str) -> str:
    """``text`` with the value of every ``access_token=`` / ``token=`` replaced by ``[redacted]``."""
    return TOKEN_IN_TEXT.sub(r"\1[redacted]", text)


class RedactTokens(logging.Filter):
    """Rewrites a record's message and string arguments with :func:`redact` (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True


def install() -> None:
    """Add :class:`RedactTokens` to uvicorn's loggers (once each)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
