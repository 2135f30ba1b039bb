"""Agent events for the event log tests: real envelopes, as the publisher builds them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from core.protocol import AgentEvent, EncodedEvent


def event(thread_id: str, seq: int, epoch: str = "epoch-1") -> AgentEvent:
    return AgentEvent(
        type="agent_thinking",
        thread_id=thread_id,
        run_id="run-1",
        epoch=epoch,
        seq=seq,
        event_id=uuid.uuid4().hex,
        ts=datetime.now(UTC),
        data={"text": f"step {seq}", "step": seq},
    )


def seqs(events: list[EncodedEvent]) -> list[int]:
    return [e.seq for e in events]


def decoded(events: list[EncodedEvent]) -> list[AgentEvent]:
    """What a client makes of the events a read hands back."""
    return [AgentEvent.model_validate_json(e.json) for e in events]
