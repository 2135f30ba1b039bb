"""The sidecar's HTTP face: /metrics, /slo (JSON), / (the status page), /healthz.

``create_app`` builds a fresh ``Sidecar`` (its own registry, store and loops) for each app, so
every test gets its own. None of these endpoints touches the backend: they serve what the loops
last saw, so they keep answering while the backend is slow or gone.

Plain Starlette, not FastAPI: four fixed routes need no request validation or OpenAPI schema,
and loading FastAPI (its OpenAPI models) costs some 6 MiB of the sidecar's 80 MB budget.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TextIO

from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_TYPE
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from core.telemetry.logging import configure_logging, get_logger
from sidecar import Clock
from sidecar.canary.run import TokenSource, minted_tokens
from sidecar.runner import Sidecar, SidecarConfig

log = get_logger(__name__)
STATIC_DIR = Path(__file__).with_name("static")
CANARY_TOKEN_ENV = "VIGIL_CANARY_TOKEN"  # noqa: S105 - the variable's name, not a secret


def default_tokens() -> TokenSource | None:
    """The canary's identity: VIGIL_CANARY_TOKEN if set, else minted with the backend's key.

    With an RS*/ES* public key (VIGIL_JWT_PUBLIC_KEY) the sidecar cannot sign tokens; without
    VIGIL_CANARY_TOKEN the canary is then disabled, which the status page and /slo say.
    """
    fixed = os.environ.get(CANARY_TOKEN_ENV)
    if fixed:
        return lambda: fixed
    from core.settings import load_token_settings

    settings = load_token_settings()
    if settings.jwt_public_key:
        log.warning("canary_disabled", reason=f"VIGIL_JWT_PUBLIC_KEY set and no {CANARY_TOKEN_ENV}")
        return None
    return minted_tokens(settings)


def create_app(
    config: SidecarConfig,
    *,
    tokens: TokenSource | None = None,
    clock: Clock = time.time,
    start_loops: bool = True,
    log_level: str = "info",
    log_stream: TextIO | None = None,
) -> Starlette:
    configure_logging(log_level, log_stream)
    sidecar = Sidecar(config, tokens=tokens, clock=clock)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if start_loops:
            await sidecar.start()
        log.info("sidecar_started", target=config.target_url, state_dir=str(config.state_dir))
        try:
            yield
        finally:
            await sidecar.stop()

    async def healthz(_: Request) -> JSONResponse:
        """Liveness of the sidecar itself."""
        return JSONResponse({"status": "ok"})

    async def metrics(request: Request) -> Response:
        registry = sidecar.metrics.registry
        if "application/openmetrics-text" in request.headers.get("accept", ""):
            return Response(generate_openmetrics(registry), media_type=OPENMETRICS_TYPE)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def slo(_: Request) -> JSONResponse:
        """SLOs, success criteria, probes, canary and memory."""
        return JSONResponse(sidecar.document())

    async def status_page(_: Request) -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    routes = [
        Route("/healthz", healthz),
        Route("/metrics", metrics),
        Route("/slo", slo),
        Route("/", status_page),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.sidecar = sidecar
    return app
