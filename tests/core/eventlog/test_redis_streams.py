"""The Redis Streams event log, against the machine's Redis (each test under its own prefix)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as redis

from core.eventlog.redis_streams import RedisStreamEventLog
from core.protocol import AgentEvent, EncodedEvent
from tests.core.eventlog.events import decoded, event, seqs

pytestmark = pytest.mark.redis

MakeLog = Callable[..., Awaitable[RedisStreamEventLog]]


def ignore_ack(thread_id: str, seq: int) -> None:
    return None


def ignore_event(user_id: str, event: AgentEvent) -> None:
    return None


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def make_log(redis_url: str, redis_prefix: str) -> AsyncIterator[MakeLog]:
    logs: list[RedisStreamEventLog] = []
    errors: list[tuple[str, str]] = []

    async def make(**options: object) -> RedisStreamEventLog:
        settings: dict[str, object] = {
            "prefix": redis_prefix,
            "replica_id": f"replica-{len(logs)}",
            "max_events": 100,
            "max_age_s": 3600.0,
            "on_error": lambda *call: errors.append(call),
            **options,
        }
        url = str(settings.pop("url", redis_url))
        log = RedisStreamEventLog(url, **settings)  # type: ignore[arg-type]
        logs.append(log)
        return log

    yield make
    for log in logs:
        await log.close()


async def test_appended_events_are_read_back_in_order_and_complete(make_log):
    log = await make_log()
    appended = [event("t1", seq) for seq in range(1, 5)]
    for e in appended:
        assert await log.append("alice", e)

    read = await log.read("t1", "epoch-1", 1, 100)

    assert seqs(read.events) == [2, 3, 4] and read.complete
    # Each as serialised when appended: the text a resume sends as it is.
    assert read.events == [EncodedEvent.of(e) for e in appended[1:]]
    assert decoded(read.events) == appended[1:]


async def test_each_stream_entry_id_is_the_seq_the_database_assigned(make_log, raw):
    log = await make_log()
    for seq in (1, 2, 3):
        await log.append("alice", event("t1", seq))

    entries = await raw.xrange(log.stream_key("t1"))

    assert [entry_id for entry_id, _ in entries] == [b"1-0", b"2-0", b"3-0"]


async def test_a_seq_at_or_below_the_newest_is_not_logged_again(make_log, raw):
    log = await make_log()
    await log.append("alice", event("t1", 1))
    await log.append("alice", event("t1", 2))
    await log.append("alice", event("t1", 2))
    await log.append("alice", event("t1", 1))

    assert [entry_id for entry_id, _ in await raw.xrange(log.stream_key("t1"))] == [b"1-0", b"2-0"]
    assert (await log.read("t1", "epoch-1", 0, 100)).complete


async def test_a_read_across_a_gap_is_incomplete_but_after_it_is_complete(make_log):
    log = await make_log()
    await log.append("alice", event("t1", 1))
    await log.append("alice", event("t1", 3))

    assert not (await log.read("t1", "epoch-1", 0, 100)).complete
    after_gap = await log.read("t1", "epoch-1", 2, 100)
    assert seqs(after_gap.events) == [3] and after_gap.complete


async def test_a_new_epoch_starts_the_stream_over_and_the_old_epoch_is_not_replayed(make_log):
    log = await make_log()
    for seq in (1, 2, 3):
        await log.append("alice", event("t1", seq, epoch="old"))
    await log.append("alice", event("t1", 1, epoch="new"))

    assert not (await log.read("t1", "old", 0, 100)).complete
    read = await log.read("t1", "new", 0, 100)
    assert seqs(read.events) == [1] and read.complete


async def test_entries_past_the_count_bound_are_trimmed(make_log):
    log = await make_log(max_events=3)
    for seq in range(1, 7):
        await log.append("alice", event("t1", seq))

    assert not (await log.read("t1", "epoch-1", 0, 100)).complete
    recent = await log.read("t1", "epoch-1", 3, 100)
    assert seqs(recent.events) == [4, 5, 6] and recent.complete


async def test_entries_older_than_the_age_bound_are_trimmed_by_minid(make_log, raw):
    log = await make_log(max_age_s=60.0)
    # An entry appended long ago (ms 0 on the Redis clock), then a fresh append.
    await raw.xadd(
        log.stream_key("t1"), {"event": event("t1", 1).model_dump_json(), "ms": 0}, "1-0"
    )
    await raw.hset(log.meta_key("t1"), mapping={"epoch": "epoch-1", "last": 1})
    await log.append("alice", event("t1", 2))

    assert [entry_id for entry_id, _ in await raw.xrange(log.stream_key("t1"))] == [b"2-0"]
    assert not (await log.read("t1", "epoch-1", 0, 100)).complete
    assert 0 < await raw.pttl(log.stream_key("t1")) <= 60_000
    assert 0 < await raw.pttl(log.meta_key("t1")) <= 60_000


async def test_a_read_over_the_limit_is_cut_and_incomplete(make_log):
    log = await make_log()
    for seq in range(1, 5):
        await log.append("alice", event("t1", seq))

    read = await log.read("t1", "epoch-1", 0, 2)

    assert seqs(read.events) == [1, 2] and not read.complete


@pytest.mark.parametrize(
    "fields",
    [
        {"event": "not an event"},
        {"user": "alice"},  # no event at all
        {"event": "EVENT,EVENT"},  # two events in one entry: seq 2 named by entry 2-0 only
    ],
    ids=["garbled", "missing", "two_in_one"],
)
async def test_an_entry_that_is_not_one_event_makes_the_read_fail_and_is_counted(
    make_log, raw, fields
):
    errors: list[tuple[str, str]] = []
    log = await make_log(on_error=lambda *call: errors.append(call))
    await log.append("alice", event("t1", 1))
    text = event("t1", 2).model_dump_json()
    await raw.xadd(
        log.stream_key("t1"), {k: v.replace("EVENT", text) for k, v in fields.items()}, "2-0"
    )
    await raw.hset(log.meta_key("t1"), mapping={"last": 2})

    read = await log.read("t1", "epoch-1", 0, 100)

    assert (read.events, read.complete) == ([], False)
    assert errors == [("redis", "decode")]


async def test_a_batch_is_appended_at_once_in_order_and_fans_out(make_log):
    first, second = await make_log(), await make_log()
    got: asyncio.Queue[tuple[str, AgentEvent]] = asyncio.Queue()
    await second.start(lambda user, e: got.put_nowait((user, e)), ignore_ack)
    await asyncio.wait_for(second.subscribed.wait(), 10)
    batch = [("alice", event("t1", 1)), ("bob", event("t2", 1)), ("alice", event("t1", 2))]

    assert await first.append_all(batch) == [True, True, True]

    read = await first.read("t1", "epoch-1", 0, 100)
    assert seqs(read.events) == [1, 2] and read.complete
    fanned = [await asyncio.wait_for(got.get(), 10) for _ in batch]
    assert [(user, e.thread_id, e.seq) for user, e in fanned] == [
        ("alice", "t1", 1),
        ("bob", "t2", 1),
        ("alice", "t1", 2),
    ]


async def test_an_append_that_fails_in_a_batch_fails_only_its_own_event(make_log, raw):
    errors: list[tuple[str, str]] = []
    log = await make_log(on_error=lambda *call: errors.append(call))
    await raw.set(log.meta_key("t2"), "not a hash")  # HGET on it: WRONGTYPE

    appended = await log.append_all(
        [("alice", event("t1", 1)), ("bob", event("t2", 1)), ("alice", event("t1", 2))]
    )

    assert appended == [True, False, True]
    assert errors == [("redis", "append")]
    assert seqs((await log.read("t1", "epoch-1", 0, 100)).events) == [1, 2]


async def test_a_batch_appends_after_redis_lost_its_scripts(make_log, raw):
    log = await make_log()
    await log.append_all([("alice", event("t1", 1)), ("alice", event("t1", 2))])
    await raw.script_flush()  # as after a restart of Redis

    assert await log.append_all([("alice", event("t1", 3)), ("alice", event("t1", 4))]) == [
        True,
        True,
    ]
    assert seqs((await log.read("t1", "epoch-1", 0, 100)).events) == [1, 2, 3, 4]


async def test_an_unknown_thread_reads_as_incomplete(make_log):
    log = await make_log()

    assert not (await log.read("never", "epoch-1", 0, 100)).complete


async def test_events_fan_out_to_the_other_replicas_and_not_back_to_their_origin(make_log):
    first, second = await make_log(), await make_log()
    got_first: asyncio.Queue[tuple[str, AgentEvent]] = asyncio.Queue()
    got_second: asyncio.Queue[tuple[str, AgentEvent]] = asyncio.Queue()
    await first.start(lambda user, e: got_first.put_nowait((user, e)), ignore_ack)
    await second.start(lambda user, e: got_second.put_nowait((user, e)), ignore_ack)
    await asyncio.wait_for(first.subscribed.wait(), 10)
    await asyncio.wait_for(second.subscribed.wait(), 10)

    await first.append("alice", event("t1", 1))
    user, received = await asyncio.wait_for(got_second.get(), 10)
    assert (user, received.thread_id, received.seq) == ("alice", "t1", 1)

    # The first replica's own message came before this one on its subscription: skipped.
    await second.append("bob", event("t2", 1))
    user, received = await asyncio.wait_for(got_first.get(), 10)
    assert (user, received.thread_id) == ("bob", "t2")
    assert got_first.empty() and got_second.empty()


async def test_acks_reach_the_other_replicas_and_not_back_to_their_origin(make_log):
    first, second = await make_log(), await make_log()
    acks_first: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
    acks_second: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
    await first.start(ignore_event, lambda thread, seq: acks_first.put_nowait((thread, seq)))
    await second.start(ignore_event, lambda thread, seq: acks_second.put_nowait((thread, seq)))
    await asyncio.wait_for(first.subscribed.wait(), 10)
    await asyncio.wait_for(second.subscribed.wait(), 10)

    # The first replica's own ack comes first on its subscription: were it not skipped,
    # it would be the first thing the first replica gets.
    await first.acked("t2", 3)
    await second.acked("t1", 7)

    assert await asyncio.wait_for(acks_first.get(), 10) == ("t1", 7)
    assert await asyncio.wait_for(acks_second.get(), 10) == ("t2", 3)


async def test_its_own_echo_is_dropped_undecoded_and_an_id_it_begins_is_not_its_own(make_log, raw):
    errors: list[tuple[str, str]] = []
    first = await make_log(replica_id="r", on_error=lambda *call: errors.append(call))
    second = await make_log(replica_id="r-2")
    got: asyncio.Queue[tuple[str, AgentEvent]] = asyncio.Queue()
    await first.start(lambda user, e: got.put_nowait((user, e)), ignore_ack)
    await asyncio.wait_for(first.subscribed.wait(), 10)

    # Undecodable, but marked as the first replica's own: dropped before decoding.
    await raw.publish(first.channel, b'{"origin": "r", not json')
    await second.append("bob", event("t2", 1))
    user, received = await asyncio.wait_for(got.get(), 10)
    assert (user, received.thread_id) == ("bob", "t2")
    assert errors == []

    # Another origin's undecodable message is counted.
    await raw.publish(first.channel, b'{"origin": "r-2", not json')
    await second.append("bob", event("t2", 2))
    await asyncio.wait_for(got.get(), 10)
    assert errors == [("redis", "decode")]


async def test_acks_taken_while_one_is_published_go_out_together_highest_seq_only(make_log, raw):
    log = await make_log()
    pubsub = raw.pubsub()
    await pubsub.subscribe(log.ack_channel)
    await pubsub.get_message(timeout=5)  # the subscription's confirmation

    for thread_id, seq in [("t1", 3), ("t1", 5), ("t2", 1), ("t1", 4)]:
        await log.acked(thread_id, seq)
    await log.close()  # waits for the publish

    message = await pubsub.get_message(timeout=5)
    assert message is not None
    assert json.loads(message["data"])["acks"] == [["t1", 5], ["t2", 1]]
    assert await pubsub.get_message(timeout=0.5) is None  # one message for the four
    await pubsub.aclose()


async def test_an_unreachable_redis_is_reported_counted_and_never_raised(make_log, closed_port):
    errors: list[tuple[str, str]] = []
    log = await make_log(
        url=f"redis://127.0.0.1:{closed_port}/0", on_error=lambda *call: errors.append(call)
    )

    assert not await log.append("alice", event("t1", 1))
    assert await log.append_all([("alice", event("t1", 2)), ("bob", event("t2", 1))]) == [
        False,
        False,
    ]
    assert not (await log.read("t1", "epoch-1", 0, 100)).complete
    state = await log.check()

    assert errors == [("redis", "append")] * 3 + [("redis", "read")]
    assert state["state"] == "unreachable" and state["degraded"]


async def test_acks_that_cannot_be_published_are_counted_and_never_raised(make_log, closed_port):
    errors: list[tuple[str, str]] = []
    log = await make_log(
        url=f"redis://127.0.0.1:{closed_port}/0", on_error=lambda *call: errors.append(call)
    )

    await log.acked("t1", 1)
    await log.acked("t2", 4)
    await log.close()

    assert errors == [("redis", "ack")]


async def test_a_fanout_crash_that_is_no_redis_error_is_counted_and_resubscribed(
    make_log, monkeypatch
):
    crashed = asyncio.Event()
    get_message = redis.client.PubSub.get_message

    async def crash_once(self: redis.client.PubSub, *args: object, **kwargs: object) -> object:
        if not crashed.is_set():
            crashed.set()
            raise RuntimeError("a bug in the subscription loop")
        return await get_message(self, *args, **kwargs)

    monkeypatch.setattr(redis.client.PubSub, "get_message", crash_once)
    errors: list[tuple[str, str]] = []
    emitter = await make_log()
    listener = await make_log(on_error=lambda *call: errors.append(call))
    got: asyncio.Queue[tuple[str, AgentEvent]] = asyncio.Queue()
    await listener.start(lambda user, e: got.put_nowait((user, e)), ignore_ack)
    await asyncio.wait_for(crashed.wait(), 10)
    await asyncio.wait_for(listener.subscribed.wait(), 10)

    await emitter.append("alice", event("t1", 1))
    user, received = await asyncio.wait_for(got.get(), 10)
    assert (user, received.seq) == ("alice", 1)
    assert errors == [("redis", "fanout_crashed")]


async def test_a_fanout_task_that_ends_is_counted(make_log, monkeypatch):
    ended = asyncio.Event()
    errors: list[tuple[str, str]] = []

    def on_error(*call: str) -> None:
        errors.append(call)
        ended.set()

    log = await make_log(on_error=on_error)

    def refuse(*args: object, **kwargs: object) -> redis.Redis:
        raise ValueError("no subscriber for this URL")

    with monkeypatch.context() as patched:
        patched.setattr(redis.Redis, "from_url", refuse)
        await log.start(ignore_event, ignore_ack)
        await asyncio.wait_for(ended.wait(), 10)
    assert errors == [("redis", "fanout_ended")]
    assert not log.subscribed.is_set()
