"""The app factory: builds every service from the settings and wires them to FastAPI.

Nothing here is global: each call makes a fresh registry, tracer provider, database and
hub, which is what lets each test build its own app."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TextIO

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace.export import SpanExporter

from core.agent.circuit import CircuitBreaker
from core.agent.engine import Executor
from core.agent.model import ModelProvider
from core.agent.providers import build_provider
from core.agent.runner import AgentRunner
from core.agent.tools.registry import default_registry
from core.api.rest import router
from core.auth import Authenticator, AuthRefusal
from core.db.database import Database
from core.db.errors import DatabaseError
from core.db.repository import Repository
from core.delivery.redelivery import Redelivery, RetrySchedule
from core.delivery.window import AckWindow
from core.drain import drain
from core.publisher import EventPublisher
from core.replicas import (
    attach_reaper,
    build_replica,
    remote_ack,
    remote_delivery,
    start_replica,
    stop_replica,
)
from core.services import Lifecycle, Services
from core.settings import Settings
from core.telemetry.logging import configure_logging, get_logger
from core.telemetry.loop_lag import watch_loop_lag
from core.telemetry.metrics import Metrics
from core.telemetry.tracing import build_tracer_provider, instrument_engine
from core.ws.delivery import Deliveries
from core.ws.endpoint import websocket_endpoint
from core.ws.hub import Hub

log = get_logger(__name__)
STATIC_DIR = Path(__file__).parent / "static"
# Regular expressions searched in each request's URL. WebSockets (``ws://`` or ``wss://``)
# are traced by their own handshake span (core.ws.endpoint): the instrumentation's span would
# stay open, with its attributes, for each connection's whole life.
UNTRACED_URLS = ("metrics", "healthz", "readyz", "static", "^wss?://")


def build_services(
    settings: Settings,
    *,
    span_exporter: SpanExporter | None = None,
    provider: ModelProvider | None = None,
) -> Services:
    metrics = Metrics(enabled=settings.metrics_enabled)
    tracer_provider, span_buffer = build_tracer_provider(
        buffer_capacity=settings.trace_buffer_spans, exporter=span_exporter
    )
    tracer = tracer_provider.get_tracer("vigil.core")
    database = Database(
        settings.database_url,
        connect_timeout_s=settings.db_connect_timeout_s,
        on_error=lambda category, operation: metrics.db_errors.labels(category, operation).inc(),
        tracer=tracer,
        **_pool_options(settings),
    )
    repository = Repository(database)
    replica = build_replica(settings, database, metrics)
    hub = Hub()
    schedule = RetrySchedule(
        settings.ack_timeout_s, settings.ack_max_redeliveries, settings.ack_timeout_backoff
    )
    redelivery = Redelivery(AckWindow(), schedule, settings.ack_window_max_events)
    tools = default_registry()
    deliveries = Deliveries(redelivery=redelivery, hub=hub, metrics=metrics, tools=tools)
    publisher = EventPublisher(
        repository=repository, event_log=replica.event_log, deliveries=deliveries, tracer=tracer
    )
    attach_reaper(
        replica,
        settings,
        database=database,
        repository=repository,
        publisher=publisher,
        metrics=metrics,
    )
    executor = Executor(
        per_user_limit=settings.max_runs_per_user, total_limit=settings.max_runs_total
    )
    model_provider = provider or build_provider(settings)
    circuit = CircuitBreaker(
        settings.circuit_failure_threshold, settings.circuit_reset_timeout_s, time.monotonic
    )
    lifecycle = Lifecycle()
    runner = AgentRunner(
        settings=settings,
        provider=model_provider,
        tools=tools,
        circuit=circuit,
        database=database,
        repository=repository,
        publisher=publisher,
        executor=executor,
        metrics=metrics,
        tracer=tracer,
        draining=lambda: lifecycle.draining,
    )
    return Services(
        settings=settings,
        metrics=metrics,
        tracer_provider=tracer_provider,
        tracer=tracer,
        span_buffer=span_buffer,
        authenticator=Authenticator(settings),
        database=database,
        repository=repository,
        hub=hub,
        deliveries=deliveries,
        publisher=publisher,
        executor=executor,
        provider=model_provider,
        tools=tools,
        circuit=circuit,
        runner=runner,
        replica=replica,
        lifecycle=lifecycle,
    )


def _pool_options(settings: Settings) -> dict[str, Any]:
    """SQLite takes one writer at a time: one pooled connection serialises writes in the
    process instead of failing them with "database is locked" under concurrent runs."""
    if settings.database_url.startswith("sqlite"):
        return {
            "pool_size": 1,
            "max_overflow": 0,
            "pool_timeout_s": 30.0,
            "sqlite_busy_timeout_s": 30.0,
        }
    return {"pool_size": settings.db_pool_size, "max_overflow": settings.db_pool_overflow}


def create_app(
    settings: Settings,
    *,
    span_exporter: SpanExporter | None = None,
    provider: ModelProvider | None = None,
    log_stream: TextIO | None = None,
) -> FastAPI:
    configure_logging(settings.log_level, log_stream)
    services = build_services(settings, span_exporter=span_exporter, provider=provider)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await services.database.connect()
        instrument_engine(services.database.traced_engine, services.tracer_provider)
        background = [
            asyncio.create_task(watch_loop_lag(services.metrics.loop_lag)),
            asyncio.create_task(services.deliveries.run()),
        ]
        replica_tasks = await start_replica(
            services.replica,
            remote_delivery(services.hub, services.deliveries),
            remote_ack(services.deliveries),
        )
        services.lifecycle.started = True
        log.info("backend_started", database=services.database.dialect)
        try:
            yield
        finally:
            await drain(services, services.settings.shutdown_grace_s)
            await stop_replica(services.replica, replica_tasks)
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await services.provider.aclose()
            await services.database.close()
            services.tracer_provider.shutdown()

    app = FastAPI(title="Vigil", version="0.1.0", lifespan=lifespan)
    app.state.services = services
    app.include_router(router)
    # A plain Starlette route: the endpoint takes no dependencies, and FastAPI's websocket
    # route would keep two exit stacks and its solved dependencies for each connection's life.
    app.router.add_websocket_route("/ws", websocket_endpoint)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def chat_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    @app.exception_handler(AuthRefusal)
    async def _auth_refused(_: Request, refusal: AuthRefusal) -> JSONResponse:
        services.metrics.auth_failures.labels(refusal.reason).inc()
        return JSONResponse(refusal.body(), status_code=refusal.status)

    @app.exception_handler(DatabaseError)
    async def _database_failed(_: Request, exc: DatabaseError) -> JSONResponse:
        body = {"error": "unavailable", "reason": f"database_{exc.category}"}
        return JSONResponse(body, status_code=503)

    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, exc: HTTPException) -> JSONResponse:
        body: Any = exc.detail if isinstance(exc.detail, dict) else {"error": exc.detail}
        return JSONResponse(body, status_code=exc.status_code)

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=services.tracer_provider,
        exclude_spans=["receive", "send"],
        excluded_urls=",".join(UNTRACED_URLS),
    )
    return app
