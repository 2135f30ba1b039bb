"""The calling user's own usage: runs by status, tokens and durations.

The user is always ``ctx.user_id``, the authenticated caller. The tool takes no arguments,
so no model output (or prompt injection) can point it at another user.
"""

from __future__ import annotations

from typing import Any

from core.agent.model import ToolSpec
from core.agent.tools.base import ToolContext, ToolError, UsageSummary, object_schema


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


class UsageReport:
    spec = ToolSpec(
        name="usage_report",
        description=(
            "The calling user's own usage: how many chats (runs) they have run, by status, "
            "the input and output tokens those used, and mean and p95 run duration. "
            "Takes no arguments; it always reports on the person asking."
        ),
        parameters=object_schema({}),
    )

    async def run(self, arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
        if arguments:
            raise ToolError(
                "usage_report takes no arguments: it always reports on the person asking"
            )
        summary: UsageSummary = await ctx.usage_source.usage_summary(ctx.user_id)
        input_tokens = int(summary.input_tokens)
        output_tokens = int(summary.output_tokens)
        return {
            "runs_total": int(summary.runs_total),
            "runs_by_status": {
                str(status): int(count)
                for status, count in sorted(summary.runs_by_status.items())
                if count
            },
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
            "mean_duration_ms": _rounded(summary.mean_duration_ms),
            "p95_duration_ms": _rounded(summary.p95_duration_ms),
        }
