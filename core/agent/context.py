"""The immutable context of one agent run: who, where, which run, and its trace lineage."""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.trace import SpanContext


@dataclass(frozen=True, slots=True)
class UserExecutionContext:
    user_id: str
    thread_id: str
    run_id: str
    request_id: str
    client_msg_id: str
    text: str
    canary: bool = False
    # The connection's span: the run's own trace links back to it.
    connection_span: SpanContext | None = None
    # Who holds the run's lease (this replica, or a reaper ending an orphan): its events are
    # stored only while that holder still holds it (fencing; see core/leases/).
    lease_holder: str | None = None
    # When the chat frame arrived and when its admission committed (ns since the epoch):
    # the run's span starts at the first, with an ``admitted`` event at the second.
    received_ns: int | None = None
    admitted_ns: int | None = None
