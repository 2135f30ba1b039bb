"""The process shell around uvicorn: a failed SIGTERM drain is reported and still exits,
and a child that ignores SIGTERM is killed."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys

import uvicorn

from core.app import build_services, create_app
from core.heap import YOUNG_GENERATION_THRESHOLD
from core.server import DrainingServer, stop_process, uvicorn_config
from core.services import Services
from core.settings import load_settings


async def failing_drain(services: Services, grace_s: float) -> None:
    raise RuntimeError("the drain broke")


async def test_a_drain_that_fails_is_counted_and_the_server_still_exits(sqlite_url):
    services = build_services(load_settings(database_url=sqlite_url))
    server = DrainingServer(uvicorn.Config(app=None), services, drain=failing_drain)

    await server._drain_then_exit()

    assert server.should_exit
    value = services.metrics.registry.get_sample_value(
        "vigil_internal_errors_total", {"where": "drain"}
    )
    assert value == 1


def test_a_child_that_ignores_sigterm_is_killed_after_the_timeout():
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(120)",
        ],
        stdout=subprocess.PIPE,
    )
    assert child.stdout is not None and child.stdout.readline() == b"ready\n"
    stop_process(child, timeout_s=0.2)
    assert child.returncode == -9
    child.stdout.close()


async def test_once_started_the_backends_heap_is_settled(sqlite_url):
    """Its startup heap is out of full collections, and its young generation is collected
    less often than CPython's default (core/heap.py)."""
    settings = load_settings(database_url=sqlite_url, log_level="warning")
    app = create_app(settings)
    services: Services = app.state.services
    server = DrainingServer(uvicorn_config(settings, app, port=0), services)
    gc.unfreeze()
    threshold = gc.get_threshold()
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not serving.done(), serving
            await asyncio.sleep(0.01)
        assert gc.get_freeze_count() > 10_000  # the imports, at least
        assert gc.get_threshold() == (YOUNG_GENERATION_THRESHOLD, *threshold[1:])
    finally:
        gc.unfreeze()  # this test process goes on: its objects stay collectable
        gc.set_threshold(*threshold)
        server.should_exit = True
        await asyncio.wait_for(serving, 30)
