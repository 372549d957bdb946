"""The HTTP API: ``create_app(settings)`` builds a FastAPI application around the same service functions."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI

from forewarn import __version__
from forewarn.http import errors, web
from forewarn.http.ledger_routes import router as ledger_router
from forewarn.http.report_routes import router as report_router
from forewarn.http.routes import router
from forewarn.http.runtime import Runtime, build_runtime
from forewarn.http.submissions import address
from forewarn.http.track_routes import router as track_router
from forewarn.notify.worker import DeliveryWorker
from forewarn.service.compose import build_service
from forewarn.service.notices import Forewarn
from forewarn.service.settings import Settings


def _utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: Settings | None = None, *, service: Forewarn | None = None,
               clock: Callable[[], datetime] = _utc_now, run_worker: bool = True) -> FastAPI:
    """The Forewarn HTTP application. ``run_worker`` starts the background sender/escalation thread with the
    application (tests may drive :meth:`Runtime.worker.run_once` themselves instead)."""
    settings = settings or Settings()
    service = service or build_service(settings)
    service.ledger.addresses = address  # parties sign the HTTP method and path of what they submit
    rt: Runtime = build_runtime(settings, service, clock)
    rt.worker = DeliveryWorker(rt.desk, rt.key, clock, poll_s=settings.worker_poll_s,
                               timeout_s=settings.webhook_timeout_s)
    service.listeners.append(rt.worker.wake)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if run_worker and rt.worker is not None:
            rt.worker.start()
        try:
            yield
        finally:
            if run_worker and rt.worker is not None:
                rt.worker.stop()

    app = FastAPI(title="Forewarn", version=__version__, lifespan=lifespan,
                  description="Multi-party airspace deconfliction and advance notification. Units: metres above the "
                  "WGS84 ellipsoid, metres, seconds, UTC; coordinates [longitude, latitude] WGS84.")
    app.state.runtime = rt
    errors.install(app)
    app.include_router(router)
    app.include_router(track_router)
    app.include_router(report_router)
    app.include_router(ledger_router)
    web.install(app)
    return app
