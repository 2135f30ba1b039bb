"""How one run is going, and what its ending records: the state the runner keeps while the
run goes on, apart from the runner's steps (core/agent/runner.py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from core.agent.emits import is_stored
from core.agent.endings import completed_data
from core.agent.model import ToolCall, Usage
from core.db.records import RunResult
from core.protocol import AgentEvent


@dataclass
class RunOutcome:
    status: str = "completed"
    text: str = ""
    error_reason: str | None = None
    error_category: str | None = None
    usage: Usage = field(default_factory=lambda: Usage(0, 0))
    # The last tool call (its tool_executing stored) and when it started, until its
    # tool_completed is known to be stored: an ending that cuts it short closes it first.
    open_call: tuple[ToolCall, float] | None = None
    # That call's own tool_completed, once queued.
    closing: asyncio.Future[AgentEvent] | None = None
    # The agent_completed of a run that reached its answer, once queued.
    answer: asyncio.Future[AgentEvent] | None = None

    @property
    def ended(self) -> bool:
        """The answer's agent_completed is stored: nothing more is sent for the run."""
        return self.answer is not None and is_stored(self.answer)

    def fail(self, status: str, reason: str, category: str | None) -> None:
        self.status = status
        self.error_reason = reason
        self.error_category = category

    def completion(self, duration_s: float) -> tuple[RunResult, dict[str, Any]]:
        """The run's record and the data of its agent_completed."""
        result = RunResult(
            status=self.status,
            duration_ms=duration_s * 1000,
            input_tokens=self.usage.input_tokens,
            output_tokens=self.usage.output_tokens,
            answer_text=self.text or None,
            error_category=self.error_category,
            error_reason=self.error_reason,
        )
        data = completed_data(
            self.status,
            result.duration_ms,
            text=self.text,
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
        )
        return result, data
