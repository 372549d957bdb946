"""The HTTP API: ``create_app(settings)`` builds a FastAPI application around the same service functions."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from forewarn import __version__
from forewarn.http import errors, limits, log_redaction, web
from forewarn.http.access_routes import router as access_router
from forewarn.http.ledger_routes import router as ledger_router
from forewarn.http.report_routes import router as report_router
from forewarn.http.routes import router
from forewarn.http.runtime import Runtime, build_runtime
from forewarn.http.stream_routes import router as stream_router
from forewarn.http.submissions import address
from forewarn.http.track_routes import router as track_router
from forewarn.notify.worker import DeliveryWorker
from forewarn.service.notices import Forewarn
from forewarn.service.replica import ReplicaKeeper
from forewarn.service.settings import Settings, load_settings

SERVE_ENV_FILE = "FOREWARN_SERVE_ENV_FILE"
"""The ``--settings`` file of ``forewarn serve --workers N``, for its worker processes (set by the parent)."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: Settings | None = None, *, service: Forewarn | None = None,
               clock: Callable[[], datetime] = _utc_now, run_worker: bool = True) -> FastAPI:
    """The Forewarn HTTP application. ``run_worker`` starts the background sender/escalation thread with the
    application (tests may drive :meth:`Runtime.worker.run_once` themselves instead)."""
    settings = settings or Settings()
    rt: Runtime = build_runtime(settings, service, clock)  # the service graph comes from service.compose
    rt.service.ledger.addresses = address  # parties sign the HTTP method and path of what they submit
    log_redaction.install()  # no bearer token in the access log (the track WebSocket's ?access_token=)
    rt.worker = DeliveryWorker(rt.desk, rt.key, clock, poll_s=settings.worker_poll_s,
                               timeout_s=settings.webhook_timeout_s)
    rt.service.listeners.append(rt.worker.wake)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log_redaction.install()  # again at start-up: after the server has configured its logging
        if run_worker and rt.worker is not None:
            rt.worker.start()
        rt.listen()
        keeper = None
        if rt.service.commits.replica is not None:  # a store shared by several processes: report, prune the log
            keeper = ReplicaKeeper(rt.service.commits.replica, settings.change_log_prune_s,
                                   settings.change_log_retention_s)
            keeper.start()
        try:
            yield
        finally:
            if keeper is not None:
                keeper.stop()
            rt.unlisten()
            if run_worker and rt.worker is not None:
                rt.worker.stop()

    app = FastAPI(title="Forewarn", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Multi-party airspace deconfliction and advance notification. Units: metres above the "
                  "WGS84 ellipsoid, metres, seconds, UTC; coordinates [longitude, latitude] WGS84.")
    app.state.runtime = rt
    limits.install(app, settings)  # before errors.install: the request-id middleware stays outermost
    errors.install(app)
    app.include_router(router)
    app.include_router(stream_router)
    app.include_router(track_router)
    app.include_router(report_router)
    app.include_router(ledger_router)
    app.include_router(access_router)
    web.install(app)
    _install_docs(app)
    return app


def app_from_environment() -> FastAPI:
    """The application of one worker process of ``forewarn serve --workers N`` (uvicorn calls it in each):
    settings from the environment (and the ``--settings`` file named by :data:`SERVE_ENV_FILE`), as the parent
    put them there. Each process builds its own service: its pool, its airspace (a replica of the change log),
    its delivery worker and its listener of the other processes' deliveries."""
    env_file = os.environ.get(SERVE_ENV_FILE)
    return create_app(load_settings(env_file=Path(env_file) if env_file else None))


SWAGGER_DIR = Path(__file__).resolve().parents[1] / "web" / "swagger"
"""Swagger UI's files (package data copied from npm's swagger-ui-dist by the install step, not committed)."""


def _install_docs(app: FastAPI) -> None:
    """The interactive API docs at ``/docs``, with Swagger UI served by the service itself (no CDN: it works
    offline). Without the install step's copy of Swagger UI it says so and links the schema instead."""
    static = "/docs/assets"

    def docs() -> HTMLResponse:
        if not (SWAGGER_DIR / "swagger-ui-bundle.js").is_file():
            return HTMLResponse(
                "<!doctype html><title>Forewarn API docs</title><p>Swagger UI is not installed: run <code>npm ci "
                "&amp;&amp; npm run swagger</code> (install.sh does). The schema is at "
                '<a href="/openapi.json">/openapi.json</a>.</p>', status_code=503)
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} API docs",
            swagger_js_url=f"{static}/swagger-ui-bundle.js", swagger_css_url=f"{static}/swagger-ui.css",
            swagger_favicon_url=f"{static}/favicon-32x32.png", oauth2_redirect_url="/docs/oauth2-redirect")

    def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    app.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False, response_model=None)
    app.add_api_route("/docs/oauth2-redirect", oauth2_redirect, methods=["GET"], include_in_schema=False,
                      response_model=None)
    app.mount(static, StaticFiles(directory=SWAGGER_DIR, check_dir=False), name="docs-assets")
