"""Emitting an agent event: sequence and persist it (the database is the source of truth),
append it to the event log (which carries it to the other replicas), then hand it to the
deliveries, which route it to the owner's connections and await its ack.

Appends to one thread are serialised here so every connection receives a thread's events
in seq order."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from core.agent.context import UserExecutionContext
from core.db.repository import Repository
from core.eventlog.base import EventLog
from core.protocol import AgentEvent, EventType, utc_now
from core.ws.delivery import Deliveries

_LOCK_STRIPES = 256


class EventPublisher:
    def __init__(
        self,
        *,
        repository: Repository,
        event_log: EventLog,
        deliveries: Deliveries,
    ) -> None:
        self._repository = repository
        self._event_log = event_log
        self._deliveries = deliveries
        self._locks = [asyncio.Lock() for _ in range(_LOCK_STRIPES)]

    async def emit(
        self, ctx: UserExecutionContext, event_type: EventType, data: dict[str, Any]
    ) -> AgentEvent:
        """Persist and send one event. A cancelled run cannot interrupt this halfway (a
        stored event the client never got, or a broken connection): the emission completes,
        then the cancellation goes on."""
        emission = asyncio.ensure_future(self._emit(ctx, event_type, data))
        try:
            return await asyncio.shield(emission)
        except asyncio.CancelledError:
            await emission
            raise

    async def _emit(
        self, ctx: UserExecutionContext, event_type: EventType, data: dict[str, Any]
    ) -> AgentEvent:
        event_id = uuid.uuid4().hex
        ts = utc_now()

        def envelope(seq: int, epoch: str) -> dict[str, Any]:
            return AgentEvent(
                type=event_type,
                thread_id=ctx.thread_id,
                run_id=ctx.run_id,
                epoch=epoch,
                seq=seq,
                event_id=event_id,
                ts=ts,
                data=data,
            ).model_dump(mode="json")

        async with self._locks[hash(ctx.thread_id) % _LOCK_STRIPES]:
            seq, epoch = await self._repository.append_event(
                thread_id=ctx.thread_id,
                run_id=ctx.run_id,
                event_id=event_id,
                type=event_type,
                build=envelope,
                created_at=ts,
                lease_holder=ctx.lease_holder,
            )
            event = AgentEvent.model_validate(envelope(seq, epoch))
            # Never raises: a failing log is counted, and the event is still sent here.
            await self._event_log.append(ctx.user_id, event)
            # Canary traffic stays out of the user SLIs (the sidecar measures it).
            self._deliveries.emitted(ctx.user_id, event, counted=not ctx.canary)
        return event
