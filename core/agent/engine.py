"""Per-user execution engines: each user's runs are isolated tasks under the user's own
concurrency limit, inside a global limit, cancellable by their owner only."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from core.agent.context import UserExecutionContext


class UserEngine:
    """The runs of one user: admitted slots and the tasks that hold them."""

    def __init__(self, user_id: str, limit: int) -> None:
        self.user_id = user_id
        self.limit = limit
        self.admitted: set[str] = set()
        self.tasks: dict[str, asyncio.Task[None]] = {}


class Executor:
    def __init__(self, *, per_user_limit: int, total_limit: int) -> None:
        self._per_user_limit = per_user_limit
        self._total_limit = total_limit
        self._engines: dict[str, UserEngine] = {}
        self._admitted_total = 0

    def _engine(self, user_id: str) -> UserEngine:
        engine = self._engines.get(user_id)
        if engine is None:
            engine = self._engines[user_id] = UserEngine(user_id, self._per_user_limit)
        return engine

    def start(
        self, ctx: UserExecutionContext, run: Coroutine[Any, Any, None]
    ) -> asyncio.Task[None]:
        engine = self._engine(ctx.user_id)
        task = asyncio.create_task(run, name=f"run:{ctx.run_id}")
        engine.tasks[ctx.run_id] = task
        task.add_done_callback(lambda _: self._forget(ctx))
        return task

    def admit(self, ctx: UserExecutionContext) -> str | None:
        """Claim a run slot; return the refusal reason when the user or the server is full."""
        engine = self._engine(ctx.user_id)
        if len(engine.admitted) >= engine.limit:
            return "user_concurrency_limit"
        if self._admitted_total >= self._total_limit:
            return "global_concurrency_limit"
        engine.admitted.add(ctx.run_id)
        self._admitted_total += 1
        return None

    def release(self, ctx: UserExecutionContext) -> None:
        engine = self._engines.get(ctx.user_id)
        if engine is not None and ctx.run_id in engine.admitted:
            engine.admitted.discard(ctx.run_id)
            self._admitted_total -= 1

    def _forget(self, ctx: UserExecutionContext) -> None:
        self.release(ctx)
        engine = self._engines.get(ctx.user_id)
        if engine is None:
            return
        engine.tasks.pop(ctx.run_id, None)
        if not engine.tasks and not engine.admitted:
            del self._engines[ctx.user_id]

    def cancel(self, user_id: str, run_id: str) -> bool:
        """Cancel a run of this user's; another user's run id is simply not found."""
        engine = self._engines.get(user_id)
        task = engine.tasks.get(run_id) if engine else None
        if task is None or task.done():
            return False
        task.cancel()
        return True

    def running(self) -> int:
        return sum(len(engine.tasks) for engine in self._engines.values())

    async def wait_all(self, timeout_s: float) -> None:
        """Let runs in flight finish within the grace period; cancel what remains."""
        tasks = [t for engine in self._engines.values() for t in engine.tasks.values()]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)
