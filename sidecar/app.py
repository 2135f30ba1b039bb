"""The sidecar's HTTP face: /metrics, /slo (JSON), / (the status page), /healthz.

``create_app`` builds a fresh ``Sidecar`` (its own registry, store and loops) for each app, so
every test gets its own. None of these endpoints touches the backend: they serve what the loops
last saw, so they keep answering while the backend is slow or gone.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TextIO

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_TYPE
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

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
) -> FastAPI:
    configure_logging(log_level, log_stream)
    sidecar = Sidecar(config, tokens=tokens, clock=clock)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if start_loops:
            await sidecar.start()
        log.info("sidecar_started", target=config.target_url, state_dir=str(config.state_dir))
        try:
            yield
        finally:
            await sidecar.stop()

    app = FastAPI(title="Vigil sidecar", version="0.1.0", lifespan=lifespan)
    app.state.sidecar = sidecar
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/healthz", summary="Liveness of the sidecar itself")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        registry = sidecar.metrics.registry
        if "application/openmetrics-text" in request.headers.get("accept", ""):
            return Response(generate_openmetrics(registry), media_type=OPENMETRICS_TYPE)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/slo", summary="SLOs, success criteria, probes, canary and memory, as JSON")
    async def slo() -> dict[str, Any]:
        return sidecar.document()

    @app.get("/", include_in_schema=False)
    async def status_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    return app
