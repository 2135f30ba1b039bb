"""Small fakes shared by the agent tests: a usage source and a conversation driver that
feeds tool results back the way the run does."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from core.agent.model import Message, ModelProvider, ModelReply, ToolCall
from core.agent.tools.base import ToolContext, ToolError
from core.agent.tools.registry import ToolRegistry


@dataclass(frozen=True)
class Summary:
    runs_total: int
    runs_by_status: dict[str, int]
    input_tokens: int
    output_tokens: int
    mean_duration_ms: float | None
    p95_duration_ms: float | None


EMPTY = Summary(0, {}, 0, 0, None, None)


@dataclass
class FakeUsageSource:
    """Per-user summaries; remembers whom it was asked about."""

    summaries: dict[str, Summary] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    async def usage_summary(self, user_id: str) -> Summary:
        self.asked.append(user_id)
        return self.summaries.get(user_id, EMPTY)


@dataclass
class Transcript:
    replies: list[ModelReply] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    text: str = ""


async def converse(
    provider: ModelProvider,
    registry: ToolRegistry,
    ctx: ToolContext,
    text: str,
    *,
    max_steps: int = 4,
) -> Transcript:
    """One run's model/tool loop, as the runner drives it."""
    transcript = Transcript()
    messages = [Message("system", "You are Vigil's assistant."), Message("user", text)]
    for _ in range(max_steps):
        reply = await provider.complete(messages, registry.specs())
        transcript.replies.append(reply)
        if not reply.tool_calls:
            transcript.text = reply.text
            return transcript
        messages.append(Message("assistant", reply.text, tool_calls=reply.tool_calls))
        for call in reply.tool_calls:
            transcript.calls.append(call)
            body = await _run_tool(registry, call, ctx)
            transcript.results.append(body)
            messages.append(
                Message("tool", json.dumps(body), tool_call_id=call.call_id, name=call.name)
            )
    raise AssertionError("the agent did not finish within the step limit")


async def _run_tool(registry: ToolRegistry, call: ToolCall, ctx: ToolContext) -> dict[str, Any]:
    tool = registry.get(call.name)
    assert tool is not None, f"the agent called an unregistered tool {call.name!r}"
    try:
        return await tool.run(call.arguments, ctx)
    except ToolError as exc:
        return {"tool": call.name, "call_id": call.call_id, "status": "error", "error": str(exc)}
