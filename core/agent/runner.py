"""One agent run, start to finish: preflight, agent_started, triage, model calls and tool
calls, agent_completed. Every way a run can end sends exactly one ``agent_completed``
(after an ``agent_error`` when it failed), so no client waits for a run that is gone."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import structlog
from opentelemetry import context as otel_context
from opentelemetry.trace import Link, Span, StatusCode, Tracer

from core.agent.circuit import CircuitBreaker
from core.agent.context import UserExecutionContext
from core.agent.emits import RunEmits, was_stored
from core.agent.endings import closing_tool_completed
from core.agent.engine import Executor
from core.agent.model import Message, ModelProvider, ModelReply, ProviderError, ToolCall
from core.agent.outcome import RunOutcome
from core.agent.phases import PhaseClock, PhaseTimeout
from core.agent.preflight import PreflightFailure, preflight
from core.agent.terminal import emit_terminal
from core.agent.tool_calls import execute_tool_call
from core.agent.tools.base import ToolContext
from core.agent.tools.registry import ToolRegistry
from core.agent.triage import triage
from core.db.database import Database
from core.db.errors import DatabaseError
from core.db.records import RunResult, RunTakenOver
from core.db.repository import Repository
from core.publisher import EventPublisher
from core.settings import Settings
from core.telemetry.logging import get_logger
from core.telemetry.metrics import Metrics, exemplar
from core.telemetry.spans import current_span
from core.telemetry.trace_view import ADMITTED_EVENT

log = get_logger(__name__)

AGENT_NAME = "vigil"
SYSTEM_PROMPT = (
    "You are Vigil's assistant. Use the tools for arithmetic, model costs and the user's own "
    "usage; answer briefly with the figures they return."
)
_CIRCUIT_STATE_VALUE = {"closed": 0, "half_open": 1, "open": 2}


class AgentRunner:
    def __init__(
        self,
        *,
        settings: Settings,
        provider: ModelProvider,
        tools: ToolRegistry,
        circuit: CircuitBreaker,
        database: Database,
        repository: Repository,
        publisher: EventPublisher,
        executor: Executor,
        metrics: Metrics,
        tracer: Tracer,
        draining: Callable[[], bool],
    ) -> None:
        self._settings = settings
        self._provider = provider
        self._tools = tools
        self._circuit = circuit
        self._database = database
        self._repository = repository
        self._publisher = publisher
        self._executor = executor
        self._metrics = metrics
        self._tracer = tracer
        self._draining = draining

    async def run(self, ctx: UserExecutionContext) -> None:
        """The body of a run task. Never raises: every ending is reported to the client."""
        links = [Link(ctx.connection_span)] if ctx.connection_span else []
        structlog.contextvars.bind_contextvars(
            run_id=ctx.run_id, user_id=ctx.user_id, thread_id=ctx.thread_id
        )
        # A fresh context: the run is the root of its own trace, linked to the connection.
        with current_span(
            self._tracer,
            f"invoke_agent {AGENT_NAME}",
            context=otel_context.Context(),
            links=links,
            attributes={
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": AGENT_NAME,
                "vigil.run_id": ctx.run_id,
                "vigil.thread_id": ctx.thread_id,
                "vigil.request_id": ctx.request_id,
                "enduser.id": ctx.user_id,
            },
            start_time=ctx.received_ns,
        ) as span:
            if ctx.admitted_ns is not None:
                span.add_event(ADMITTED_EVENT, timestamp=ctx.admitted_ns)
            try:
                await self._run_traced(ctx, span)
            except RunTakenOver as exc:
                # Cut off long enough for another replica to end it (replica_lost): its
                # client already has an ending, so this replica stops without a word more.
                self._metrics.runs_fenced.inc()
                span.set_status(StatusCode.ERROR, "taken_over")
                log.warning("run_taken_over", holder=exc.holder)
            finally:
                self._publisher.forget(ctx.run_id)

    async def _run_traced(self, ctx: UserExecutionContext, span: Span) -> None:
        clock = PhaseClock(self._tracer, self._metrics)
        started = time.perf_counter()
        try:
            async with clock.phase("preflight", self._settings.preflight_timeout_s):
                failure = await preflight(
                    ctx,
                    circuit=self._circuit,
                    tools=self._tools,
                    database=self._database,
                    executor=self._executor,
                )
        except PhaseTimeout as exc:
            self._executor.release(ctx)
            failure = PreflightFailure("preflight_timeout", str(exc))
        if failure is not None:
            self._metrics.preflight_refusals.labels(failure.reason).inc()
            log.info("run_refused", reason=failure.reason)
            span.set_status(StatusCode.ERROR, failure.reason)
            await self._finish_failed(ctx, failure.reason, "preflight", failure.message, started)
            return
        self._metrics.runs_active.inc()
        outcome = RunOutcome()
        emits = RunEmits(self._publisher, ctx)
        try:
            emits.send("agent_started", {"agent": AGENT_NAME, "message": ctx.text})
            async with asyncio.timeout(self._settings.run_timeout_s):
                await self._agent_loop(ctx, emits, clock, outcome)
            await self._store_answer(ctx, emits, outcome, time.perf_counter() - started)
        except TimeoutError:
            outcome.fail("timeout", "run_timeout", None)
            await self._end_early(ctx, outcome, clock.current, "the run took too long")
        except PhaseTimeout as exc:
            outcome.fail("timeout", "phase_timeout", None)
            await self._end_early(ctx, outcome, exc.phase, str(exc))
        except ProviderError as exc:
            outcome.fail("failed", exc.reason, None)
            await self._end_early(ctx, outcome, "model_call", str(exc))
        except DatabaseError as exc:
            outcome.fail("failed", f"database_{exc.category}", exc.category)
            await self._end_early(ctx, outcome, clock.current, str(exc))
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()  # Let the run report how it ended.
            if outcome.answer is not None:
                await was_stored(outcome.answer)  # cancelled while its end was being stored
            if not outcome.ended:
                await self._end_cancelled(ctx, outcome, clock.current)
        except RunTakenOver:
            raise
        except Exception as exc:  # noqa: BLE001 - the run boundary: a bug must still end the run
            self._metrics.internal_errors.labels("run").inc()
            log.exception("run_crashed", phase=clock.current)
            outcome.fail("failed", "internal_error", None)
            await self._end_early(ctx, outcome, clock.current, type(exc).__name__)
        finally:
            self._metrics.runs_active.dec()
            emits.abandon()
        duration_s = time.perf_counter() - started
        if outcome.status != "completed":
            span.set_status(StatusCode.ERROR, outcome.error_reason or outcome.status)
        await self._complete(ctx, outcome, duration_s, span)

    async def _agent_loop(
        self,
        ctx: UserExecutionContext,
        emits: RunEmits,
        clock: PhaseClock,
        outcome: RunOutcome,
    ) -> None:
        async with clock.phase("triage", self._settings.triage_timeout_s):
            result = triage(ctx.text)
        emits.send("agent_thinking", {"text": result.summary, "step": 1})
        messages = [Message("system", SYSTEM_PROMPT), Message("user", ctx.text)]
        tool_context = ToolContext(user_id=ctx.user_id, usage_source=self._repository)
        for step in range(2, self._settings.max_agent_steps + 2):
            reply = await self._call_model(clock, messages)
            outcome.usage = outcome.usage + reply.usage
            emits.send("agent_thinking", {"text": reply.thinking, "step": step})
            if not reply.tool_calls:
                outcome.text = reply.text
                return
            messages.append(Message("assistant", reply.text, tool_calls=reply.tool_calls))
            for call in reply.tool_calls:
                messages.append(await self._call_tool(emits, clock, call, tool_context, outcome))
        outcome.text = "I could not finish within the step limit; here is what I found so far."

    async def _call_model(self, clock: PhaseClock, messages: list[Message]) -> ModelReply:
        provider = self._provider
        if not self._circuit.allow():
            self._publish_circuit_state()
            raise ProviderError("circuit_open", "the model provider circuit is open")
        started = time.perf_counter()
        try:
            async with clock.phase(
                "model_call",
                self._settings.model_call_timeout_s,
                f"chat {provider.model}",
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": provider.name,
                    "gen_ai.request.model": provider.model,
                },
            ) as span:
                reply = await provider.complete(messages, self._tools.specs())
                span.set_attributes(
                    {
                        "gen_ai.usage.input_tokens": reply.usage.input_tokens,
                        "gen_ai.usage.output_tokens": reply.usage.output_tokens,
                        "gen_ai.response.finish_reasons": [
                            "tool_calls" if reply.tool_calls else "stop"
                        ],
                    }
                )
                trace_exemplar = exemplar(span)
        except (ProviderError, PhaseTimeout):
            self._circuit.record_failure()
            self._publish_circuit_state()
            raise
        self._circuit.record_success()
        self._publish_circuit_state()
        self._metrics.genai_duration.labels("chat", provider.model).observe(
            time.perf_counter() - started, trace_exemplar
        )
        self._metrics.genai_tokens.labels("input").observe(reply.usage.input_tokens)
        self._metrics.genai_tokens.labels("output").observe(reply.usage.output_tokens)
        return reply

    async def _call_tool(
        self,
        emits: RunEmits,
        clock: PhaseClock,
        call: ToolCall,
        tool_context: ToolContext,
        outcome: RunOutcome,
    ) -> Message:
        # Stored before the tool runs: a run fenced off (taken over) runs no more tools.
        await emits.stored(
            "tool_executing",
            {"tool": call.name, "call_id": call.call_id, "arguments": call.arguments},
        )
        outcome.open_call, outcome.closing = (call, time.perf_counter()), None
        async with clock.phase(
            "tool_call",
            None,
            f"execute_tool {call.name}",
            {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": call.name,
                "gen_ai.tool.call.id": call.call_id,
            },
        ) as span:
            completed = await execute_tool_call(
                self._tools, call, tool_context, self._settings.tool_timeout_s, self._metrics
            )
            if completed["status"] == "error":
                span.set_status(StatusCode.ERROR, str(completed.get("error")))
        # Queued, not awaited: it is stored with what the run sends next, and the model's
        # next call need not wait for it. The call counts as closed once it is stored: if it
        # cannot be, the run's ending closes it (_close_open_call).
        outcome.closing = emits.send("tool_completed", completed)
        body = completed.get("result") if completed["status"] == "ok" else completed
        return Message(
            "tool", json.dumps(body, default=str), tool_call_id=call.call_id, name=call.name
        )

    def _publish_circuit_state(self) -> None:
        value = _CIRCUIT_STATE_VALUE.get(self._circuit.state, 2)
        self._metrics.circuit_state.labels(self._provider.name).set(value)

    async def _end_early(
        self, ctx: UserExecutionContext, outcome: RunOutcome, phase: str, message: str
    ) -> None:
        """The events of a run ending before its answer: the tool call it cut short (if
        any) closed, then ``agent_error``; ``agent_completed`` follows in ``_complete``."""
        reason = outcome.error_reason or "internal_error"
        await self._close_open_call(ctx, outcome, reason)
        await self._emit_error(ctx, reason, phase, message)

    async def _end_cancelled(
        self, ctx: UserExecutionContext, outcome: RunOutcome, phase: str
    ) -> None:
        """A run cancelled before its end: by the server's drain (a failure the client is
        told of), or by its client."""
        if self._draining():
            outcome.fail("failed", "shutdown", None)
            await self._end_early(ctx, outcome, phase, "the server is restarting")
        else:
            outcome.status = "cancelled"
            await self._close_open_call(ctx, outcome, "cancelled")

    async def _close_open_call(
        self, ctx: UserExecutionContext, outcome: RunOutcome, reason: str
    ) -> None:
        if outcome.open_call is None:
            return
        call, started = outcome.open_call
        closing, outcome.open_call, outcome.closing = outcome.closing, None, None
        if closing is not None and await was_stored(closing):
            return  # its own tool_completed, queued when the tool returned
        duration_ms = (time.perf_counter() - started) * 1000
        await emit_terminal(
            self._publisher,
            self._metrics,
            ctx,
            "tool_completed",
            closing_tool_completed(call.name, call.call_id, reason, duration_ms),
        )

    async def _emit_error(
        self, ctx: UserExecutionContext, reason: str, phase: str, message: str
    ) -> None:
        log.warning("run_failed", reason=reason, phase=phase)
        await emit_terminal(
            self._publisher,
            self._metrics,
            ctx,
            "agent_error",
            {"reason": reason, "phase": phase, "message": message},
        )

    async def _store_answer(
        self,
        ctx: UserExecutionContext,
        emits: RunEmits,
        outcome: RunOutcome,
        duration_s: float,
    ) -> None:
        """The agent_completed of a run that reached its answer, with the run's record,
        queued behind the run's last events and awaited with them: they share a transaction
        when nothing else is in flight, where storing them first cost one more. Not an
        ending (which is tried after an earlier failure): the publisher refuses it with the
        failure of any earlier event of the run, so a run that lost an event is never
        recorded as completed; the failure is raised here and the run ends failed."""
        self._executor.release(ctx)  # before the client hears (see _emit_completed)
        result, data = outcome.completion(duration_s)
        outcome.answer = emits.send("agent_completed", data, result=result)
        await emits.drain()

    async def _emit_completed(
        self, ctx: UserExecutionContext, outcome: RunOutcome, duration_s: float
    ) -> None:
        """agent_completed, and the run's record in the same transaction."""
        # The slot is free before the client hears the run is over: a client that sends its
        # next message on agent_completed is not refused for a run that has ended.
        self._executor.release(ctx)
        result, data = outcome.completion(duration_s)
        if not await emit_terminal(
            self._publisher, self._metrics, ctx, "agent_completed", data, result=result
        ):
            await self._record(ctx, result)  # the event is lost; the record may still go in

    async def _finish_failed(
        self, ctx: UserExecutionContext, reason: str, phase: str, message: str, started: float
    ) -> None:
        await self._emit_error(ctx, reason, phase, message)
        outcome = RunOutcome(status="failed", error_reason=reason)
        await self._emit_completed(ctx, outcome, time.perf_counter() - started)

    async def _complete(
        self, ctx: UserExecutionContext, outcome: RunOutcome, duration_s: float, span: Span
    ) -> None:
        if not outcome.ended:
            await self._emit_completed(ctx, outcome, duration_s)
        if not ctx.canary:
            self._metrics.runs.labels(outcome.status).inc()
            if outcome.status == "completed":
                # Only successful runs: the run-success SLI reads this histogram's 30 s bucket.
                self._metrics.run_duration.observe(duration_s, exemplar(span))
        log.info("run_finished", status=outcome.status, duration_ms=round(duration_s * 1000, 1))

    async def _record(self, ctx: UserExecutionContext, result: RunResult) -> None:
        try:
            await self._repository.record_result(ctx.run_id, result, lease_holder=ctx.lease_holder)
        except DatabaseError as exc:
            log.error("run_record_failed", category=exc.category)
