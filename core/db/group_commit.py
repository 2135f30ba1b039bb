"""Group commit: every item submitted while a transaction is in flight waits for the next
one, which stores them all together.

One transaction per event made the database the bottleneck of every run: its fixed cost
(``BEGIN``, the lease check, ``COMMIT``, and on SQLite the hop to the writer thread)
dwarfs the rows themselves. Batching shares it among everything waiting, so the
cost per event falls as load rises, and an idle server still stores each event at once (a
batch of one starts as soon as it arrives; nothing waits for a batch to fill).

Batches are stored one after the other, by one task, in the order items were submitted.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

MAX_BATCH = 500


class GroupCommit(Generic[Item, Result]):
    """``store(items)`` stores a batch and answers each item, in order: a result, or an
    exception (as a value) that fails that item alone. An exception it raises fails the
    whole batch."""

    def __init__(
        self,
        store: Callable[[Sequence[Item]], Awaitable[Sequence[Result | Exception]]],
        *,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._store = store
        self._max_batch = max_batch
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.batches = 0  # stored, for the tests and the bench
        self.items = 0

    def submit(self, item: Item) -> asyncio.Future[Result]:
        """Queue ``item`` for the next batch; the future holds its outcome."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._flusher is None or self._flusher.done():
            # A context of its own: the batches belong to no one caller (not to the trace
            # or the log context of whichever caller happened to start the task).
            self._flusher = asyncio.create_task(
                self._flush(), name="group-commit", context=contextvars.Context()
            )
        return future

    async def _flush(self) -> None:
        while self._waiting:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            await self._commit(batch)

    async def _commit(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            outcomes = await self._store([item for item, _ in batch])
        except asyncio.CancelledError:
            # Shutting down: nobody will store what waits, so nobody may wait for it.
            for _, future in batch + self._waiting:
                future.cancel()
            self._waiting.clear()
            raise
        except Exception as exc:  # noqa: BLE001 - handed to every waiter, which raises it
            outcomes = [exc] * len(batch)
        self.batches += 1
        self.items += len(batch)
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():
                continue
            if isinstance(outcome, Exception):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
