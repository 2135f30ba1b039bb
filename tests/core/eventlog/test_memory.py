"""The in-process event log: bounded per thread, honest about what it no longer holds."""

from __future__ import annotations

from core.eventlog.memory import InProcessEventLog
from tests.core.eventlog.events import event, seqs


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_log(clock: Clock | None = None, **options: float) -> InProcessEventLog:
    settings = {"max_events": 5, "max_age_s": 60.0, "max_threads": 3, **options}
    return InProcessEventLog(clock=clock or Clock(), **settings)  # type: ignore[arg-type]


async def test_a_read_after_a_seq_returns_every_later_event_in_order():
    log = make_log()
    for seq in range(1, 5):
        await log.append("alice", event("t1", seq))

    read = await log.read("t1", "epoch-1", 1, 100)

    assert seqs(read.events) == [2, 3, 4]
    assert read.complete


async def test_a_read_at_the_newest_seq_is_complete_and_empty():
    log = make_log()
    await log.append("alice", event("t1", 1))

    read = await log.read("t1", "epoch-1", 1, 100)

    assert read.events == [] and read.complete


async def test_events_beyond_the_count_bound_are_trimmed_and_a_read_across_them_is_incomplete():
    log = make_log()
    for seq in range(1, 9):
        await log.append("alice", event("t1", seq))

    assert not (await log.read("t1", "epoch-1", 0, 100)).complete
    recent = await log.read("t1", "epoch-1", 3, 100)
    assert seqs(recent.events) == [4, 5, 6, 7, 8] and recent.complete


async def test_events_older_than_the_age_bound_are_dropped():
    clock = Clock()
    log = make_log(clock)
    await log.append("alice", event("t1", 1))
    clock.now += 61
    await log.append("alice", event("t1", 2))

    assert not (await log.read("t1", "epoch-1", 0, 100)).complete
    assert seqs((await log.read("t1", "epoch-1", 1, 100)).events) == [2]


async def test_another_epoch_is_not_replayed_and_a_new_epoch_starts_the_thread_over():
    log = make_log()
    await log.append("alice", event("t1", 1, epoch="old"))
    await log.append("alice", event("t1", 1, epoch="new"))

    assert not (await log.read("t1", "old", 0, 100)).complete
    read = await log.read("t1", "new", 0, 100)
    assert seqs(read.events) == [1] and read.complete


async def test_a_gap_makes_earlier_history_unreplayable_but_keeps_what_follows():
    log = make_log()
    await log.append("alice", event("t1", 1))
    await log.append("alice", event("t1", 3))

    assert not (await log.read("t1", "epoch-1", 0, 100)).complete
    assert (await log.read("t1", "epoch-1", 2, 100)).complete


async def test_the_same_event_appended_twice_is_logged_once():
    log = make_log()
    first = event("t1", 1)
    await log.append("alice", first)
    await log.append("alice", first)

    assert seqs((await log.read("t1", "epoch-1", 0, 100)).events) == [1]


async def test_a_read_over_the_limit_is_cut_and_incomplete():
    log = make_log()
    for seq in range(1, 5):
        await log.append("alice", event("t1", seq))

    read = await log.read("t1", "epoch-1", 0, 2)

    assert seqs(read.events) == [1, 2] and not read.complete


async def test_the_least_recently_appended_thread_is_forgotten_past_the_thread_bound():
    log = make_log()
    for thread in ("t1", "t2", "t3", "t4"):
        await log.append("alice", event(thread, 1))

    assert not (await log.read("t1", "epoch-1", 0, 100)).complete
    assert (await log.read("t4", "epoch-1", 0, 100)).complete
    assert (await log.check())["threads"] == 3
