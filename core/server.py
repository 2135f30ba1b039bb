"""Running the backend under uvicorn, alone or with the sidecar beside it."""

from __future__ import annotations

import os
import subprocess
import sys

import uvicorn

from core.app import create_app
from core.settings import Settings

SIDECAR_PORT = 9100


def uvicorn_config(settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        # wsproto answers a refused handshake cleanly (websockets-sansio logs a spurious error).
        ws="wsproto",
        # The transport refuses frames over the limit with close code 1009.
        ws_max_size=settings.max_frame_bytes,
        # Heartbeats are the protocol's own ping/pong frames, measured by the app.
        ws_ping_interval=None,
        lifespan="on",
        log_config=None,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=30,
    )


def run_backend(settings: Settings) -> None:
    uvicorn.Server(uvicorn_config(settings)).run()


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
        sidecar.terminate()
        sidecar.wait(timeout=10)
