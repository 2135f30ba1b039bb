"""Checks before a run may start: provider circuit closed, tools registered, database
reachable, user and server under their run limits (the last check claims the slot)."""

from __future__ import annotations

from dataclasses import dataclass

from core.agent.circuit import CircuitBreaker
from core.agent.context import UserExecutionContext
from core.agent.engine import Executor
from core.agent.tools.registry import ToolRegistry
from core.db.database import Database
from core.db.errors import DatabaseError

# A database that committed a transaction this recently counts as reachable without a ping.
RECENT_ANSWER_S = 1.0


@dataclass(frozen=True)
class PreflightFailure:
    reason: str
    message: str


async def preflight(
    ctx: UserExecutionContext,
    *,
    circuit: CircuitBreaker,
    tools: ToolRegistry,
    database: Database,
    executor: Executor,
) -> PreflightFailure | None:
    if circuit.state == "open":
        return PreflightFailure(
            "circuit_open",
            f"the model provider is failing; retry in {circuit.retry_after():.0f} s",
        )
    if not tools.names():
        return PreflightFailure("no_tools", "no tools are registered")
    try:
        if not database.answered_within(RECENT_ANSWER_S):
            await database.ping()
    except DatabaseError as exc:
        return PreflightFailure(
            f"database_{exc.category}", f"the database is unavailable ({exc.category})"
        )
    refusal = executor.admit(ctx)
    if refusal == "user_concurrency_limit":
        return PreflightFailure(refusal, "you already have the maximum number of runs in flight")
    if refusal is not None:
        return PreflightFailure(refusal, "the server is at its run limit; retry shortly")
    return None
