"""Executing one tool call and describing its result as the data of ``tool_completed``.

A tool's failure is the tool's outcome, not the run's: bad arguments, a timeout or a bug in
the tool all become ``status: "error"`` with a message the user can read."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from core.agent.model import ToolCall
from core.agent.tools.base import ToolContext, ToolError
from core.agent.tools.registry import ToolRegistry
from core.db.errors import DatabaseError
from core.telemetry.logging import get_logger
from core.telemetry.metrics import Metrics

log = get_logger(__name__)


async def execute_tool_call(
    tools: ToolRegistry,
    call: ToolCall,
    context: ToolContext,
    timeout_s: float,
    metrics: Metrics,
) -> dict[str, Any]:
    started = time.perf_counter()
    result: dict[str, Any] | None = None
    error: str | None = None
    tool = tools.get(call.name)
    if tool is None:
        error = f"unknown tool {call.name!r}"
    else:
        try:
            async with asyncio.timeout(timeout_s):
                result = await tool.run(call.arguments, context)
        except ToolError as exc:
            error = str(exc)
        except TimeoutError:
            error = f"the tool took longer than {timeout_s:g} s"
        except DatabaseError as exc:
            error = f"the tool could not read the database ({exc.category})"
        except Exception as exc:  # noqa: BLE001 - a tool bug becomes that tool's error, not a crash
            metrics.internal_errors.labels("tool").inc()
            log.exception("tool_crashed", tool=call.name)
            error = f"the tool failed unexpectedly ({type(exc).__name__})"
    status = "ok" if error is None else "error"
    metrics.tool_calls.labels(call.name if tool else "unknown", status).inc()
    completed: dict[str, Any] = {
        "tool": call.name,
        "call_id": call.call_id,
        "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 3),
    }
    if error is None:
        completed["result"] = result
    else:
        completed["error"] = error
    return completed
