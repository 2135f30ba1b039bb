"""The process shell around uvicorn: a failed SIGTERM drain is reported and still exits,
and a child that ignores SIGTERM is killed."""

from __future__ import annotations

import subprocess
import sys

import uvicorn

from core.app import build_services
from core.server import DrainingServer, stop_process
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
