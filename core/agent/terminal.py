"""Storing the events that end a run (``tool_completed`` closing a cut-off call,
``agent_error``, ``agent_completed``) through a database outage: they must not raise, and a
run whose database comes back still ends for its client."""

from __future__ import annotations

import asyncio
from typing import Any

from core.agent.context import UserExecutionContext
from core.db.errors import DatabaseError
from core.db.records import RunResult
from core.protocol import EventType
from core.publisher import EventPublisher
from core.telemetry.logging import get_logger
from core.telemetry.metrics import Metrics

log = get_logger(__name__)

# How long a run's ending waits for an unavailable database (about a minute in all), and
# which failures are worth the wait: the database is away, not refusing this event.
TERMINAL_RETRY_WAITS_S = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0)
_DATABASE_OUTAGE = frozenset({"connection_refused", "connection_lost", "timeout", "pool_exhausted"})


async def emit_terminal(
    publisher: EventPublisher,
    metrics: Metrics,
    ctx: UserExecutionContext,
    kind: EventType,
    data: dict[str, Any],
    *,
    result: RunResult | None = None,
) -> bool:
    """Store and send one ending event; True once stored. Never raises: a failure here is
    counted and logged, not lost.

    An event is sent only once it is stored (its seq comes from the database), so while the
    database is out the ending is retried, waits doubling, for up to
    ``TERMINAL_RETRY_WAITS_S``: a run whose database comes back ends for its client (with
    the ``database_*`` reason it failed with) instead of staying silent for good."""
    waits = iter(TERMINAL_RETRY_WAITS_S)
    while True:
        try:
            await publisher.emit(ctx, kind, data, ending=True, result=result)
            return True
        except DatabaseError as exc:
            wait = next(waits, None)
            if wait is None or not (exc.retryable or exc.category in _DATABASE_OUTAGE):
                metrics.events_undelivered.labels(kind, f"persist_{exc.category}").inc()
                log.error("terminal_event_not_persisted", type=kind, category=exc.category)
                return False
            log.warning("terminal_event_retrying", type=kind, category=exc.category, wait=wait)
            await asyncio.sleep(wait)
