"""The data of the events that end a run, built in one place for every way a run ends:
the runner (a normal ending, a failure, a timeout) and the orphan reaper (a lost replica).

PROTOCOL.md pairs every ``tool_executing`` with a ``tool_completed`` of the same
``call_id``; a run that ends while a tool is executing therefore first closes that call with
``closing_tool_completed`` (status ``error``, the run's ending as the error), then sends
``agent_error`` and ``agent_completed``."""

from __future__ import annotations

from typing import Any


def completed_data(
    status: str,
    duration_ms: float,
    *,
    text: str = "",
    input_tokens: int = 0,
    output_tokens: int = 0,
) -> dict[str, Any]:
    """The data of ``agent_completed``."""
    return {
        "status": status,
        "text": text,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        "duration_ms": round(duration_ms, 3),
    }


def closing_tool_completed(
    tool: str, call_id: str, reason: str, duration_ms: float
) -> dict[str, Any]:
    """The data of the ``tool_completed`` that closes a call the run's ending cut short;
    ``reason`` is why the run ended (``run_timeout``, ``replica_lost``, ...)."""
    return {
        "tool": tool,
        "call_id": call_id,
        "status": "error",
        "error": reason,
        "duration_ms": round(max(0.0, duration_ms), 3),
    }
