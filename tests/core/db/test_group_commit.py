"""GroupCommit on its own: what waits while a batch is stored goes into the next one, in
order; an outcome fails its own item only; a store that raises fails its batch only."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from core.db.group_commit import GroupCommit


class Store:
    """Stores batches of ints, holding each batch until released when ``hold`` is set."""

    def __init__(self, *, hold: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        if not hold:
            self.release.set()
        self.entered = asyncio.Event()

    async def __call__(self, items: Sequence[int]) -> list[int | Exception]:
        self.batches.append(list(items))
        self.entered.set()
        await self.release.wait()
        if -1 in items:
            raise RuntimeError("the whole batch failed")
        return [ValueError(f"bad {i}") if i < 0 else i * 10 for i in items]


async def test_what_arrives_during_a_transaction_goes_together_into_the_next() -> None:
    store = Store(hold=True)
    commit: GroupCommit[int, int] = GroupCommit(store)
    first = commit.submit(1)
    await store.entered.wait()
    waiting = [commit.submit(i) for i in (2, 3, 4)]
    store.release.set()
    assert await asyncio.gather(first, *waiting) == [10, 20, 30, 40]
    assert store.batches == [[1], [2, 3, 4]]
    assert (commit.batches, commit.items) == (2, 4)


async def test_an_idle_commit_stores_one_item_at_once() -> None:
    store = Store()
    commit: GroupCommit[int, int] = GroupCommit(store)
    assert await commit.submit(7) == 70
    assert await commit.submit(8) == 80
    assert store.batches == [[7], [8]]


async def test_batches_are_bounded_and_keep_the_order_of_submission() -> None:
    store = Store(hold=True)
    commit: GroupCommit[int, int] = GroupCommit(store, max_batch=2)
    futures = [commit.submit(i) for i in range(5)]
    store.release.set()
    assert await asyncio.gather(*futures) == [0, 10, 20, 30, 40]
    assert store.batches == [[0, 1], [2, 3], [4]]


async def test_an_outcome_that_is_an_exception_fails_only_its_item() -> None:
    store = Store(hold=True)
    commit: GroupCommit[int, int] = GroupCommit(store)
    futures = [commit.submit(i) for i in (1, -2, 3)]
    store.release.set()
    results = await asyncio.gather(*futures, return_exceptions=True)
    assert results[0] == 10 and results[2] == 30
    assert isinstance(results[1], ValueError)


async def test_a_store_that_raises_fails_its_batch_and_the_next_batch_goes_on() -> None:
    store = Store(hold=True)
    commit: GroupCommit[int, int] = GroupCommit(store)
    failing = [commit.submit(i) for i in (5, -1)]
    await store.entered.wait()
    later = commit.submit(6)
    store.release.set()
    for future in failing:
        with pytest.raises(RuntimeError, match="whole batch"):
            await future
    assert await later == 60
    assert store.batches == [[5, -1], [6]]
