"""Checks of what a client sees of a run, shared by the integration tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


def assert_well_formed_run(events: list[dict[str, Any]]) -> None:
    """The order PROTOCOL.md promises for one run, and one envelope for all its events."""
    types = [event["type"] for event in events]
    assert types[0] == "agent_started", types
    assert types[-1] == "agent_completed", types
    assert types.count("agent_started") == 1 and types.count("agent_completed") == 1, types
    # A run that fails before it could think (preflight, a database gone) goes straight to
    # agent_error; every other run thinks first.
    failed = len(types) >= 3 and types[-2] == "agent_error"
    assert types[1] == "agent_thinking" or (failed and types[1] == "agent_error"), types
    open_calls: dict[str, str] = {}
    for event in events[1:-1]:
        data = event["data"]
        if event["type"] == "tool_executing":
            assert not open_calls, "a tool call started before the previous one completed"
            open_calls[data["call_id"]] = data["tool"]
        elif event["type"] == "tool_completed":
            assert open_calls.pop(data["call_id"]) == data["tool"]
    assert not open_calls, "a tool_executing without its tool_completed"
    run_ids = {event["run_id"] for event in events}
    epochs = {event["epoch"] for event in events}
    assert len(run_ids) == 1 and len(epochs) == 1
    seqs = [event["seq"] for event in events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs


def tool_pairs(events: list[dict[str, Any]]) -> list[str]:
    return [event["data"]["tool"] for event in events if event["type"] == "tool_completed"]


async def eventually(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Wait for work the server finishes just after the client has its last event."""
    for _ in range(int(timeout_s / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never held")
