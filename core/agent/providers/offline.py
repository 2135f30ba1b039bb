"""The built-in agent: deterministic, no network, what ``VIGIL_PROVIDER=offline`` runs.

On a fresh user turn it plans tool calls with triage; once the results are in the
conversation it writes the answer from them; when no tool fits it says what it can do.
Token usage is an estimate (a token per four characters), stable for a given conversation.
"""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from collections.abc import Callable, Sequence

from core.agent.model import Message, ModelReply, ToolCall, ToolSpec, Usage
from core.agent.providers.answers import compose_answer, direct_answer
from core.agent.triage import triage


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def _new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


class OfflineProvider:
    name = "offline"

    def __init__(
        self,
        model: str = "vigil-offline-1",
        call_id: Callable[[], str] = _new_call_id,
        *,
        latency_s: float = 0.0,
    ) -> None:
        self.model = model
        self._call_id = call_id
        # Simulated model latency (VIGIL_OFFLINE_LATENCY_S): long runs without a network.
        self._latency_s = latency_s

    async def complete(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> ModelReply:
        if self._latency_s:
            await asyncio.sleep(self._latency_s)
        input_tokens = sum(estimate_tokens(m.content) for m in messages) + sum(
            estimate_tokens(json.dumps([t.name, t.description, t.parameters])) for t in tools
        )
        turn = _current_turn(messages)
        user_text = turn[0].content if turn else ""
        results = [m for m in turn if m.role == "tool"]
        if results:
            text = compose_answer(_calls_in(turn), results)
            thinking = f"Writing the answer from {_plural(len(results), 'tool result')}."
            return self._reply(text, (), input_tokens, thinking)
        offered = {spec.name for spec in tools}
        plan = triage(user_text)
        calls = tuple(
            ToolCall(self._call_id(), call.tool, dict(call.arguments))
            for call in plan.calls
            if call.tool in offered
        )
        if calls:
            names = ", ".join(dict.fromkeys(call.name for call in calls))
            thinking = f"Calling {names} ({_plural(len(calls), 'call')})."
            return self._reply("", calls, input_tokens, thinking)
        thinking = "No tool is needed; answering directly."
        return self._reply(direct_answer(plan.intent), (), input_tokens, thinking)

    async def aclose(self) -> None:
        return None

    @staticmethod
    def _reply(
        text: str, calls: tuple[ToolCall, ...], input_tokens: int, thinking: str
    ) -> ModelReply:
        emitted = text + "".join(json.dumps([c.name, c.arguments]) for c in calls)
        usage = Usage(input_tokens, estimate_tokens(emitted))
        return ModelReply(text=text, tool_calls=calls, usage=usage, thinking=thinking)


def _current_turn(messages: Sequence[Message]) -> list[Message]:
    """The last user message and everything after it."""
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == "user":
            return list(messages[index:])
    return []


def _calls_in(turn: Sequence[Message]) -> dict[str, ToolCall]:
    return {call.call_id: call for m in turn if m.role == "assistant" for call in m.tool_calls}


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
