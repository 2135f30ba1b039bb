"""The events one run has queued and not yet seen stored.

A run hands its progress events to the publisher and goes on (they are stored together with
other runs' events); it waits for them only where it must: before a tool runs (its
``tool_executing`` must be stored: a run cut off by fencing runs no tool) and at the end of
its loop, where its ``agent_completed`` is queued behind them and awaited with them (one
transaction for the run's last events and its end, when nothing else is in flight). A
failure already known stops the run at its next event, as one raised by the event itself did
when every event was awaited.
"""

from __future__ import annotations

import asyncio
from typing import Any

from core.agent.context import UserExecutionContext
from core.db.records import RunResult
from core.protocol import AgentEvent, EventType
from core.publisher import EventPublisher


class RunEmits:
    def __init__(self, publisher: EventPublisher, ctx: UserExecutionContext) -> None:
        self._publisher = publisher
        self._ctx = ctx
        self._pending: list[asyncio.Future[AgentEvent]] = []

    def send(
        self, kind: EventType, data: dict[str, Any], *, result: RunResult | None = None
    ) -> asyncio.Future[AgentEvent]:
        """Queue the event (with the run's record, ``result``, to store in its
        transaction); raise the failure of an earlier one, if one is known. The future
        tells whether it was stored."""
        self._raise_known_failure()
        future = self._publisher.submit(self._ctx, kind, data, result=result)
        self._pending.append(future)
        return future

    async def stored(self, kind: EventType, data: dict[str, Any]) -> None:
        """Queue the event and wait until it and every earlier one are stored."""
        self.send(kind, data)
        await self.drain()

    async def drain(self) -> None:
        """Wait for every queued event; raise the first failure. Cancelling the run does
        not cancel the events (shielded): they are stored and sent all the same."""
        while self._pending:
            await asyncio.shield(self._pending[0])
            self._pending.pop(0)

    def abandon(self) -> None:
        """The run is over: what is still queued is stored without it; its failures were
        answered by the run's ending, so they are only collected (no 'never retrieved')."""
        for future in self._pending:
            future.add_done_callback(_collect)
        self._pending.clear()

    def _raise_known_failure(self) -> None:
        while self._pending and self._pending[0].done():
            self._pending.pop(0).result()  # raises the event's failure


async def was_stored(future: asyncio.Future[AgentEvent]) -> bool:
    """Wait until a queued event is stored or refused (the publisher settles it whatever
    the run does); True if it was stored."""
    await asyncio.wait([future])
    return is_stored(future)


def is_stored(future: asyncio.Future[AgentEvent]) -> bool:
    """The queued event is stored by now."""
    return future.done() and not future.cancelled() and future.exception() is None


def _collect(future: asyncio.Future[AgentEvent]) -> None:
    if not future.cancelled():
        future.exception()
