"""Emitting an agent event: sequence and persist it (the database is the source of truth),
append it to the event log (which carries it to the other replicas), then hand it to the
deliveries, which route it to the owner's connections and await its ack.

The events of every run are stored together (core/db/group_commit.py): whatever is waiting
when a transaction ends goes into the next one. One task stores the batches, one after the
other, and hands each batch's events out in order before the next, so every connection
receives a thread's events in seq order.

A run need not wait for each event to be stored (``submit``); it must not go on past a
failure it has not seen, so once an event of a run fails, nothing later of that run is
stored: its client would otherwise see the run with a hole in it. Only the events that end
a run (``ending``) are still tried, so the client learns how it ended.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.trace import (
    Link,
    NoOpTracer,
    Span,
    SpanContext,
    SpanKind,
    Tracer,
    get_current_span,
)
from pydantic_core import to_jsonable_python

from core.agent.context import UserExecutionContext
from core.db.errors import DatabaseError
from core.db.group_commit import GroupCommit
from core.db.records import (
    AppendOutcome,
    NewEvent,
    RunNotFound,
    RunResult,
    RunTakenOver,
    ThreadNotFound,
)
from core.db.repository import Repository
from core.eventlog.base import EventLog
from core.protocol import AgentEvent, EventType, utc_now
from core.telemetry.logging import get_logger
from core.telemetry.spans import current_span
from core.ws.delivery import Deliveries

log = get_logger(__name__)

# Failures that one event can cause on its own (a constraint, a bad value): a batch they
# fail is stored again event by event, so only the culprit fails. Any other failure (the
# database is away, out of connections, locked) fails every event of the batch alike.
ONE_EVENTS_FAULT = frozenset({"integrity_violation", "data_error"})
EmitFailure = DatabaseError | RunTakenOver | RunNotFound | ThreadNotFound
# Failures of a transaction that lost to a concurrent one: the same batch, tried again, can
# succeed. Tried after these waits, then given up (the batch's events fail).
CONFLICTS = frozenset({"deadlock", "serialization_failure"})
CONFLICT_RETRY_WAITS_S = (0.01, 0.05, 0.25)


@dataclass
class _Emission:
    ctx: UserExecutionContext
    type: EventType
    data: dict[str, Any]
    ending: bool
    result: RunResult | None = None
    # The span the event was emitted in: its batch's span links to it.
    emitted_in: SpanContext = field(default_factory=lambda: get_current_span().get_span_context())
    event_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    ts: Any = field(default_factory=utc_now)
    event: AgentEvent | None = None  # built once its seq is known

    def payload(self, seq: int, epoch: str) -> dict[str, Any]:
        """The stored envelope; the event sent is built from it here, once."""
        self.event = AgentEvent(
            type=self.type,
            thread_id=self.ctx.thread_id,
            run_id=self.ctx.run_id,
            epoch=epoch,
            seq=seq,
            event_id=self.event_id,
            ts=self.ts,
            data=self.data,
        )
        return self.event.model_dump(mode="json")

    def new_event(self) -> NewEvent:
        return NewEvent(
            thread_id=self.ctx.thread_id,
            run_id=self.ctx.run_id,
            event_id=self.event_id,
            type=self.type,
            build=self.payload,
            created_at=self.ts,
            lease_holder=self.ctx.lease_holder,
            result=self.result,
        )


class EventPublisher:
    def __init__(
        self,
        *,
        repository: Repository,
        event_log: EventLog,
        deliveries: Deliveries,
        tracer: Tracer | None = None,
    ) -> None:
        self._repository = repository
        self._tracer = tracer or NoOpTracer()
        self._event_log = event_log
        self._deliveries = deliveries
        self._batches: GroupCommit[_Emission, AgentEvent] = GroupCommit(self._store_and_send)
        # Runs with an event that failed, and why: nothing later of theirs is stored.
        self._failed: dict[str, EmitFailure] = {}

    @property
    def batches(self) -> GroupCommit[_Emission, AgentEvent]:
        return self._batches

    def submit(
        self,
        ctx: UserExecutionContext,
        event_type: EventType,
        data: dict[str, Any],
        *,
        ending: bool = False,
        result: RunResult | None = None,
    ) -> asyncio.Future[AgentEvent]:
        """Queue one event for the next transaction. The future holds the event once it is
        stored and handed out, or the failure (``DatabaseError``, ``RunTakenOver``,
        ``RunNotFound``, ``ThreadNotFound``) that kept it out. ``ending``: the event ends
        the run (a closing ``tool_completed``, ``agent_error``, ``agent_completed``) and is
        tried even after an earlier event of the run failed. ``result``: the run's record,
        stored in the event's own transaction (with its ``agent_completed``)."""
        if result is not None and ctx.lease_holder is None:
            # Checked here, not in the batch (where it would fail other runs' events too).
            raise ValueError("an event that records its run's result needs its lease holder")
        # JSON now, in the run that made it: data that cannot be stored fails this run,
        # not the batch it would have shared with other runs' events.
        emission = _Emission(ctx, event_type, to_jsonable_python(data), ending, result)
        return self._batches.submit(emission)

    async def emit(
        self,
        ctx: UserExecutionContext,
        event_type: EventType,
        data: dict[str, Any],
        *,
        ending: bool = False,
        result: RunResult | None = None,
    ) -> AgentEvent:
        """Persist and send one event, and wait until it is. Cancelling the caller does
        not cancel the emission (the client would see a stored event never sent): it
        completes, then the cancellation goes on."""
        emission = self.submit(ctx, event_type, data, ending=ending, result=result)
        try:
            return await asyncio.shield(emission)
        except asyncio.CancelledError:
            await asyncio.wait([emission])
            raise

    def forget(self, run_id: str) -> None:
        """The run is over: drop what was kept of its failures."""
        self._failed.pop(run_id, None)

    async def _store_and_send(
        self, batch: Sequence[_Emission]
    ) -> Sequence[AgentEvent | EmitFailure]:
        """One transaction for the batch (refusing the events of runs that already
        failed), then each stored event handed out, in order. Its span (``store_events``)
        is the root of a trace of its own, linked to the span each event was emitted in.
        The transaction is traced in that span, not in a child (docs/telemetry.md): its
        end is the span's ``events_stored`` event, the hand-out follows it."""
        # One link per span (a run's events of one batch were mostly emitted in the same).
        emitted_in = {(e.emitted_in.span_id, e.emitted_in.trace_id): e.emitted_in for e in batch}
        with current_span(
            self._tracer,
            "store_events",
            kind=SpanKind.CLIENT,
            links=[Link(context) for context in emitted_in.values() if context.is_valid],
            attributes={"vigil.batch.events": len(batch)},
        ) as span:
            return await self._store_batch(batch, span)

    async def _store_batch(
        self, batch: Sequence[_Emission], span: Span
    ) -> Sequence[AgentEvent | EmitFailure]:
        outcomes: list[AgentEvent | EmitFailure | None] = [None] * len(batch)
        live: list[int] = []
        for index, emission in enumerate(batch):
            failure = None if emission.ending else self._failed.get(emission.ctx.run_id)
            if failure is None:
                live.append(index)
            else:
                outcomes[index] = failure
        if not live:
            return _answered(outcomes)
        stored: Sequence[AppendOutcome | DatabaseError]
        try:
            stored = await self._append([batch[i].new_event() for i in live], span)
        except DatabaseError as exc:
            if len(live) > 1 and exc.category in ONE_EVENTS_FAULT:
                for index in live:
                    outcomes[index] = await self._store_alone(batch[index], span)
                return _answered(outcomes)
            stored = [exc] * len(live)
        else:
            span.add_event("events_stored")
        settled = []
        for index, stored_one in zip(live, stored, strict=True):
            outcome = outcomes[index] = self._settle(batch[index], stored_one)
            settled.append((batch[index], outcome))
        await self._hand_out(settled)
        return _answered(outcomes)

    async def _append(self, events: list[NewEvent], span: Span) -> list[AppendOutcome]:
        """``append_events``, tried again after a conflict with another transaction (a
        deadlock, a serialization failure), which a retry resolves: failing the batch
        would fail every run it carries."""
        for wait in CONFLICT_RETRY_WAITS_S:
            try:
                return await self._repository.append_events(events, span=span)
            except DatabaseError as exc:
                if exc.category not in CONFLICTS:
                    raise
                log.warning("event_batch_retrying", category=exc.category, events=len(events))
                await asyncio.sleep(wait)
        return await self._repository.append_events(events, span=span)

    async def _store_alone(self, emission: _Emission, span: Span) -> AgentEvent | EmitFailure:
        failure = None if emission.ending else self._failed.get(emission.ctx.run_id)
        if failure is not None:
            return failure  # an earlier event of this run in the batch was the culprit
        stored: AppendOutcome | DatabaseError
        try:
            (stored,) = await self._append([emission.new_event()], span)
        except DatabaseError as exc:
            stored = exc
        outcome = self._settle(emission, stored)
        await self._hand_out([(emission, outcome)])
        return outcome

    def _settle(
        self, emission: _Emission, outcome: AppendOutcome | DatabaseError
    ) -> AgentEvent | EmitFailure:
        """The stored event, or the failure, which stops the run's later events."""
        if isinstance(outcome, Exception):
            if not emission.ending:
                self._failed.setdefault(emission.ctx.run_id, outcome)
            return outcome
        assert emission.event is not None  # built by payload() when it was stored
        return emission.event

    async def _hand_out(self, settled: list[tuple[_Emission, AgentEvent | EmitFailure]]) -> None:
        """The stored events to the event log, all in one call (one round trip to Redis),
        then to the deliveries, in order."""
        events = [(e, outcome) for e, outcome in settled if isinstance(outcome, AgentEvent)]
        if not events:
            return
        # Never raises: a failing log is counted, and the events are still sent here.
        await self._event_log.append_all([(e.ctx.user_id, event) for e, event in events])
        for emission, event in events:
            # Canary traffic stays out of the user SLIs (the sidecar measures it).
            self._deliveries.emitted(emission.ctx.user_id, event, counted=not emission.ctx.canary)


def _answered(
    outcomes: list[AgentEvent | EmitFailure | None],
) -> list[AgentEvent | EmitFailure]:
    assert all(outcome is not None for outcome in outcomes)  # every emission was answered
    return [outcome for outcome in outcomes if outcome is not None]
