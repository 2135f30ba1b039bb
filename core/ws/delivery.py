"""The asyncio shell around ``core.delivery``: every emitted event enters the ack window,
acks retire it, and a sweep resends what is overdue (through the hub, so the isolation
guard checks every resend) or counts it as undelivered once its retry budget is spent.

Canary traffic is tracked and resent like any other but kept out of the user SLI counters
(the sidecar measures it). Metrics: docs/telemetry.md.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Container

from core.delivery.redelivery import GiveUp, Redeliver, Redelivery
from core.delivery.window import Retired
from core.protocol import AgentEvent
from core.telemetry.logging import get_logger
from core.telemetry.metrics import Metrics
from core.ws.hub import Hub

log = get_logger(__name__)

TOOL_EVENT_TYPES = frozenset({"tool_executing", "tool_completed"})
# The sweep runs this often at most, and at least twice per ack timeout.
MAX_SWEEP_INTERVAL_S = 1.0


class Deliveries:
    def __init__(
        self,
        *,
        redelivery: Redelivery,
        hub: Hub,
        metrics: Metrics,
        tools: Container[str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redelivery = redelivery
        # The registered tool names: any other name a model made up is labelled "unknown",
        # so tool names cannot grow the metrics' label cardinality.
        self._tools = tools
        self._hub = hub
        self._metrics = metrics
        self._clock = clock
        # The window's size, read at scrape time rather than set on every send and ack.
        metrics.events_pending_ack.set_function(redelivery.window.pending_count)

    @property
    def sweep_interval_s(self) -> float:
        return min(MAX_SWEEP_INTERVAL_S, self._redelivery.schedule.ack_timeout_s / 2)

    def emitted(self, user_id: str, event: AgentEvent, *, counted: bool = True) -> int:
        """Send a stored event to the owner's connections and await its ack; return how many
        connections it was handed to."""
        sent = self._hub.publish(user_id, event)
        tool = _tool_of(event, self._tools)
        now = self._clock()
        self._redelivery.sent(
            thread_id=event.thread_id,
            seq=event.seq,
            event_type=event.type,
            run_id=event.run_id,
            user_id=user_id,
            now=now,
            reached=sent > 0,
            counted=counted,
            tool=tool,
            payload=event,
        )
        if counted:
            self._metrics.events_emitted.labels(event.type).inc()
            if tool is not None:
                self._metrics.tool_events_emitted.labels(tool, event.type).inc()
                # Create the acked series at zero so the ratio exists before the first ack.
                self._metrics.tool_events_acked.labels(tool, event.type)
        for overflow in self._redelivery.overflow(now):
            self._undelivered(overflow.retired)
        return sent

    def last_pending_seq(self, thread_id: str) -> int:
        return self._redelivery.window.last_seq(thread_id)

    def acked(self, thread_id: str, seq: int) -> list[Retired]:
        """A client confirmed everything of the thread up to ``seq``. The caller has checked
        that the thread is the connection user's and that ``seq`` was sent."""
        retired = self._redelivery.acked(thread_id, seq, self._clock())
        metrics = self._metrics
        for event in retired:
            if not event.counted:
                continue
            metrics.events_acked.labels(event.type).inc()
            metrics.ack_latency.labels(event.type).observe(event.latency_s)
            if event.tool is not None:
                metrics.tool_events_acked.labels(event.tool, event.type).inc()
        return retired

    def sweep(self) -> tuple[int, int]:
        """Resend or give up every overdue event; return (resent, given up)."""
        resent = given_up = 0
        for decision in self._redelivery.tick(self._clock()):
            match decision:
                case Redeliver(entry=entry):
                    event = entry.payload
                    assert isinstance(event, AgentEvent)
                    sent = self._hub.publish(entry.user_id, event)
                    self._redelivery.redelivered(entry, sent > 0)
                    if entry.counted:
                        self._metrics.events_redelivered.labels(entry.type).inc()
                    resent += 1
                case GiveUp(retired=retired):
                    self._undelivered(retired)
                    given_up += 1
        return resent, given_up

    def _undelivered(self, retired: Retired) -> None:
        reason = retired.reason or "unknown"
        if retired.counted:
            self._metrics.events_undelivered.labels(retired.type, reason).inc()
        log.warning(
            "event_undelivered",
            run_id=retired.run_id,
            thread_id=retired.thread_id,
            seq=retired.seq,
            type=retired.type,
            reason=reason,
            redeliveries=retired.redeliveries,
            canary=not retired.counted,
        )

    async def run(self) -> None:
        """Sweep until cancelled (the app's lifespan owns this task)."""
        while True:
            await asyncio.sleep(self.sweep_interval_s)
            try:
                self.sweep()
            except Exception:  # noqa: BLE001 - one bad sweep must not end redelivery for good
                self._metrics.internal_errors.labels("delivery_sweep").inc()
                log.exception("delivery_sweep_failed")


def _tool_of(event: AgentEvent, known: Container[str]) -> str | None:
    """The tool label of a tool event: its name when registered, else ``unknown``."""
    if event.type not in TOOL_EVENT_TYPES:
        return None
    tool = event.data.get("tool")
    return tool if isinstance(tool, str) and tool in known else "unknown"
