"""Running the backend under uvicorn, alone or with the sidecar beside it.

SIGTERM drains before uvicorn stops listening (``DrainingServer``): while the runs in
flight finish, the process still answers, so ``/readyz`` says 503 and a new handshake gets
503 ``not_ready`` (a closed port would only say "connection refused"). A second SIGTERM,
or SIGINT, stops at once (the app's shutdown still ends what remains with ``shutdown``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from types import FrameType

import uvicorn
from fastapi import FastAPI

from core.app import create_app
from core.drain import drain
from core.heap import settle_heap
from core.services import Services
from core.settings import Settings
from core.telemetry.logging import get_logger
from core.ws.transport import ClosingWSProtocol

log = get_logger(__name__)

SIDECAR_PORT = 9100
# Seconds an idle HTTP connection stays open (sidecar/runner.py KEEPALIVE_EXPIRY_S is shorter).
HTTP_KEEP_ALIVE_S = 5
# How long the sidecar gets to stop after SIGTERM before it is killed.
SIDECAR_STOP_TIMEOUT_S = 10.0


class DrainingServer(uvicorn.Server):
    def __init__(
        self,
        config: uvicorn.Config,
        services: Services,
        *,
        drain: Callable[[Services, float], Awaitable[None]] = drain,
    ) -> None:
        super().__init__(config)
        self._services = services
        self._drain_services = drain
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain: asyncio.Task[None] | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            settle_heap()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGTERM and self._drain is None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._begin_drain)
            return
        super().handle_exit(sig, frame)

    def _begin_drain(self) -> None:
        if self._drain is None:
            self._drain = asyncio.create_task(self._drain_then_exit(), name="sigterm-drain")

    async def _drain_then_exit(self) -> None:
        log.warning("sigterm_received", grace_s=self._services.settings.shutdown_grace_s)
        try:
            await self._drain_services(self._services, self._services.settings.shutdown_grace_s)
        except Exception:  # noqa: BLE001 - the drain task's end: nobody else would see the error
            self._services.metrics.internal_errors.labels("drain").inc()
            log.exception("drain_failed")
        finally:
            self.should_exit = True


def uvicorn_config(
    settings: Settings, app: FastAPI | None = None, *, port: int | None = None
) -> uvicorn.Config:
    """How the backend runs under uvicorn; the tests' in-process servers pass their own app
    (and port 0), so they speak WebSocket exactly as the real process does."""
    return uvicorn.Config(
        app if app is not None else create_app(settings),
        host=settings.host,
        port=settings.port if port is None else port,
        # wsproto answers a refused handshake cleanly (websockets-sansio logs a spurious error),
        # and of uvicorn's three it holds the least per idle connection (2,000 of them, no
        # deflate: wsproto 37 KiB each, websockets-sansio 40, websockets 47). Its protocol,
        # closing an unparseable frame with its RFC 6455 code (core/ws/transport.py).
        ws=ClosingWSProtocol,
        # The transport refuses frames over the limit with close code 1009.
        ws_max_size=settings.max_frame_bytes,
        # Accepted only when enabled (off by default: see Settings.ws_per_message_deflate).
        ws_per_message_deflate=settings.ws_per_message_deflate,
        # Heartbeats are the protocol's own ping/pong frames, measured by the app.
        ws_ping_interval=None,
        lifespan="on",
        log_config=None,
        log_level="warning",
        access_log=False,
        # uvicorn's default, stated: the sidecar's HTTP client drops idle connections sooner.
        timeout_keep_alive=HTTP_KEEP_ALIVE_S,
        # After the drain (core.drain), what is left of open requests gets this long.
        timeout_graceful_shutdown=int(settings.shutdown_grace_s) + 10,
    )


def run_backend(settings: Settings) -> None:
    config = uvicorn_config(settings)
    app = config.app
    services: Services = app.state.services  # type: ignore[union-attr]
    DrainingServer(config, services).run()


def run_with_sidecar(settings: Settings) -> None:
    base = f"http://{settings.host}:{settings.port}"
    sidecar = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
        [
            sys.executable,
            "-m",
            "core",
            "sidecar",
            "--target-url",
            base,
            "--target-pid",
            str(os.getpid()),
        ]
    )
    print(f"Vigil chat page:   {base}/", flush=True)
    print(f"Backend metrics:   {base}/metrics", flush=True)
    print(f"Sidecar status:    http://{settings.host}:{SIDECAR_PORT}/", flush=True)
    try:
        run_backend(settings)
    finally:
        stop_process(sidecar, SIDECAR_STOP_TIMEOUT_S)


def stop_process(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout_s``."""
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        log.warning("process_killed", pid=process.pid, after_s=timeout_s)
        process.kill()
        process.wait()
