"""The in-process event log: bounded per thread and in total, honest about what it no
longer holds."""

from __future__ import annotations

from core.eventlog.memory import EvictReason, InProcessEventLog
from core.protocol import AgentEvent, EncodedEvent
from tests.core.eventlog.events import decoded, event, seqs


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_log(
    clock: Clock | None = None, evicted: list[EvictReason] | None = None, **options: float
) -> InProcessEventLog:
    settings = {"max_events": 5, "max_age_s": 60.0, "max_threads": 3, "max_bytes": 2**30}
    settings.update(options)
    on_evict = evicted.append if evicted is not None else lambda reason: None
    return InProcessEventLog(clock=clock or Clock(), on_evict=on_evict, **settings)  # type: ignore[arg-type]


async def bytes_of(*events: AgentEvent) -> int:
    """What a log charges for holding exactly these events."""
    log = make_log(max_events=len(events))
    for e in events:
        await log.append("alice", e)
    return log.bytes_held


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


async def test_a_read_gives_back_the_events_as_they_were_appended():
    log = make_log()
    appended = [event("t1", seq) for seq in range(1, 4)]
    for e in appended:
        await log.append("alice", e)

    # As serialised when appended: the text a resume sends, not parsed and serialised again.
    assert (await log.read("t1", "epoch-1", 0, 100)).events == [
        EncodedEvent.of(e) for e in appended
    ]
    assert decoded((await log.read("t1", "epoch-1", 0, 100)).events) == appended


async def test_the_least_recently_appended_thread_is_forgotten_past_the_thread_bound():
    evicted: list[EvictReason] = []
    log = make_log(evicted=evicted)
    for thread in ("t1", "t2", "t3", "t4"):
        await log.append("alice", event(thread, 1))

    assert not (await log.read("t1", "epoch-1", 0, 100)).complete
    assert (await log.read("t4", "epoch-1", 0, 100)).complete
    assert (await log.check())["threads"] == 3
    assert evicted == ["threads"]


async def test_past_the_byte_bound_the_least_recently_appended_thread_is_forgotten():
    threads = {t: [event(t, 1), event(t, 2)] for t in ("t1", "t2", "t3")}
    two_threads = await bytes_of(*threads["t2"]) + await bytes_of(*threads["t3"])
    evicted: list[EvictReason] = []
    log = make_log(evicted=evicted, max_bytes=two_threads)
    for events in threads.values():
        for e in events:
            await log.append("alice", e)

    assert (await log.read("t1", "epoch-1", 0, 100)).events == []
    assert (await log.read("t2", "epoch-1", 0, 100)).complete
    assert (await log.read("t3", "epoch-1", 0, 100)).complete
    assert evicted == ["bytes"]
    assert log.bytes_held <= two_threads


async def test_a_thread_appended_to_again_is_forgotten_after_the_others():
    t1 = [event("t1", 1), event("t1", 2)]
    t2 = [event("t2", 1)]
    t3 = [event("t3", 1)]
    budget = await bytes_of(*t1) + max(await bytes_of(*t2), await bytes_of(*t3))
    log = make_log(max_bytes=budget)
    await log.append("alice", t1[0])
    await log.append("alice", t2[0])
    await log.append("alice", t1[1])
    await log.append("alice", t3[0])

    assert (await log.read("t2", "epoch-1", 0, 100)).events == []
    assert seqs((await log.read("t1", "epoch-1", 0, 100)).events) == [1, 2]


async def test_a_single_thread_larger_than_the_byte_bound_keeps_its_newest_events():
    events = [event("t1", seq) for seq in range(1, 6)]
    evicted: list[EvictReason] = []
    log = make_log(evicted=evicted, max_bytes=await bytes_of(*events[-2:]))
    for e in events:
        await log.append("alice", e)

    assert not (await log.read("t1", "epoch-1", 0, 100)).complete
    assert decoded((await log.read("t1", "epoch-1", 3, 100)).events) == events[-2:]
    assert evicted == []


async def test_a_thread_whose_newest_event_has_expired_is_forgotten_once_it_is_the_oldest():
    clock = Clock()
    evicted: list[EvictReason] = []
    log = make_log(clock, evicted)
    await log.append("alice", event("t1", 1))
    clock.now += 61
    t2 = event("t2", 1)
    await log.append("alice", t2)

    assert (await log.check())["threads"] == 1
    assert evicted == ["age"]
    assert log.bytes_held == await bytes_of(t2)


async def test_trims_gaps_and_new_epochs_give_back_the_bytes_of_what_they_drop():
    log = make_log(max_events=3)
    for seq in range(1, 6):
        await log.append("alice", event("t1", seq))
    await log.append("alice", event("t1", 8))
    await log.append("alice", event("t2", 1, epoch="old"))
    newest = [event("t2", 1, epoch="new"), event("t2", 2, epoch="new")]
    for e in newest:
        await log.append("alice", e)
    t1 = decoded((await log.read("t1", "epoch-1", 7, 100)).events)

    assert log.bytes_held == await bytes_of(*t1) + await bytes_of(*newest)


async def test_closing_the_log_forgets_everything():
    log = make_log()
    await log.append("alice", event("t1", 1))
    await log.close()

    assert log.bytes_held == 0
    assert (await log.check())["threads"] == 0
