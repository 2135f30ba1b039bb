"""Draining a backend: readiness turns false (``/readyz`` 503, new handshakes 503
``not_ready``), open connections are closed with 1012 so their clients resume on another
replica at once, and runs in flight get the grace period to finish; what remains is
cancelled and ends with ``agent_error`` reason ``shutdown`` (the runner sees the drain).

Called on SIGTERM (``core.server``), by ``POST /admin/drain`` and by the app's shutdown.
"""

from __future__ import annotations

from core.protocol import CloseCode
from core.services import Services
from core.telemetry.logging import get_logger

log = get_logger(__name__)


def stop_accepting(services: Services) -> int:
    """Turn unready and ask every open connection to move; returns how many were asked."""
    services.lifecycle.draining = True
    connections = services.hub.all()
    for connection in connections:
        # Clients reconnect at once, elsewhere, and resume (docs/protocol.md, close codes).
        connection.request_close(CloseCode.SERVICE_RESTART)
    return len(connections)


async def drain(services: Services, grace_s: float) -> None:
    """``stop_accepting``, then wait up to ``grace_s`` for the runs in flight."""
    closed = stop_accepting(services)
    running = services.executor.running()
    log.info("drain_started", connections_closed=closed, runs_in_flight=running, grace_s=grace_s)
    await services.executor.wait_all(grace_s)
    log.info("drain_finished", runs_left=services.executor.running())
