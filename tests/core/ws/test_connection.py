"""One connection's send path: the isolation guard, the resume merge, the bounded queue and
a close the peer never lets through. The socket is a fake that records or blocks."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, cast

from starlette.websockets import WebSocket

from core.delivery.resume import ReplayMerge
from core.protocol import AgentEvent, CloseCode, EncodedEvent, Ping
from core.telemetry.metrics import Metrics
from core.ws.connection import Connection
from tests.core.ws.sockets import RecordingSocket


class GatedSocket(RecordingSocket):
    """A peer that reads nothing until its gate opens."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def send_text(self, text: str) -> None:
        await self.gate.wait()
        await super().send_text(text)


class StuckSocket(RecordingSocket):
    """A peer that stopped reading: no send ever completes."""

    async def send_text(self, text: str) -> None:
        await asyncio.Event().wait()

    async def close(self, code: int) -> None:
        await asyncio.Event().wait()


def make(socket: RecordingSocket, *, max_queue_bytes: int = 1 << 20, grace: float = 1.0):
    metrics = Metrics()
    conn = Connection(
        cast(WebSocket, socket),
        connection_id="c1",
        user_id="alice",
        canary=False,
        metrics=metrics,
        max_queue_bytes=max_queue_bytes,
        close_grace_s=grace,
    )
    return conn, metrics


def event(seq: int, text: str = "") -> AgentEvent:
    return AgentEvent(
        type="agent_thinking",
        thread_id="t",
        run_id="r",
        epoch="e1",
        seq=seq,
        event_id=f"ev{seq}",
        ts=datetime(2026, 11, 26, tzinfo=UTC),
        data={"text": text, "step": 1},
    )


async def drained(conn: Connection) -> list[dict[str, Any]]:
    conn.request_close(1000)
    await conn.wait_closed()
    return cast(RecordingSocket, conn.websocket).sent


async def test_another_users_event_is_blocked_and_counted():
    conn, metrics = make(RecordingSocket())
    conn.follow("t")
    assert conn.send_event(event(1), owner_user_id="mallory") is False
    assert await drained(conn) == [{"closed": 1000}]
    assert metrics.registry.get_sample_value("vigil_isolation_violations_total") == 1


async def test_an_event_for_a_closing_connection_is_reported_not_sent():
    conn, _ = make(RecordingSocket())
    conn.follow("t")
    assert conn.send_event(event(1), "alice") is True
    conn.request_close(4408)
    assert conn.send_event(event(2), "alice") is False
    assert [frame.get("seq") for frame in await drained(conn)] == [1, None]


async def test_live_events_during_a_resume_wait_in_its_merge_and_come_out_once_in_order():
    conn, _ = make(RecordingSocket())
    merge = ReplayMerge[EncodedEvent](0, epoch_matches=True)
    conn.begin_resume("t", merge)
    assert conn.follows("t")
    conn.send_event(event(2), "alice")
    conn.send_event(event(3), "alice")
    conn.end_resume("t")
    replayed = [(1, EncodedEvent.of(event(1))), (2, EncodedEvent.of(event(2)))]
    for merged in merge.finish(replayed, complete=True).items:
        conn.send_replayed(merged)
    conn.send_event(event(4), "alice")  # after the resume: straight to the queue
    assert [frame.get("seq") for frame in await drained(conn)] == [1, 2, 3, 4, None]


async def test_a_replayed_event_goes_out_as_the_very_text_it_was_logged_as():
    class TextSocket(RecordingSocket):
        def __init__(self) -> None:
            super().__init__()
            self.texts: list[str] = []

        async def send_text(self, text: str) -> None:
            self.texts.append(text)
            await super().send_text(text)

    socket = TextSocket()
    conn, _ = make(socket)
    logged = event(1).model_dump_json().replace(",", ", ")  # not how pydantic writes it
    conn.send_replayed(EncodedEvent(1, "e1", logged))
    await drained(conn)
    assert socket.texts == [logged]


async def test_a_queue_over_its_bound_closes_with_4409_and_is_emptied():
    conn, _ = make(RecordingSocket(), max_queue_bytes=64 * 1024)
    conn.follow("t")
    seq = 0
    while conn.close_code is None:
        seq += 1
        conn.send_event(event(seq, "x" * 4000), "alice")
    assert conn.close_code == CloseCode.SLOW_CONSUMER
    assert conn.queued_bytes == 0
    assert await drained(conn) == [{"closed": CloseCode.SLOW_CONSUMER}]


async def test_live_events_held_during_a_resume_count_against_the_queue_bound():
    conn, _ = make(RecordingSocket(), max_queue_bytes=64 * 1024)
    merge = ReplayMerge[EncodedEvent](0, epoch_matches=True)
    conn.begin_resume("t", merge)
    seq = 0
    while seq < 100 and conn.send_event(event(seq + 1, "x" * 4000), "alice"):
        seq += 1
        assert conn.held_bytes <= 64 * 1024
    assert 10 <= seq < 17  # about 64 KiB of 4 KB events were held, then the bound closed it
    assert conn.close_code == CloseCode.SLOW_CONSUMER
    assert conn.held_bytes == 0 and merge.finish([], complete=True).items == []
    assert await drained(conn) == [{"closed": CloseCode.SLOW_CONSUMER}]


async def test_held_and_queued_bytes_share_one_bound():
    conn, _ = make(RecordingSocket(), max_queue_bytes=64 * 1024)
    conn.follow("t")
    while conn.queued_bytes <= 40 * 1024:
        conn.send_replayed(EncodedEvent.of(event(1, "x" * 4000)))
    conn.begin_resume("t", ReplayMerge[EncodedEvent](1, epoch_matches=True))
    seq = 1
    while seq < 100 and conn.send_event(event(seq + 1, "x" * 4000), "alice"):
        seq += 1
    assert seq - 1 < 7  # only the ~24 KiB the queue left could be held
    assert conn.close_code == CloseCode.SLOW_CONSUMER


async def test_a_close_the_peer_never_lets_through_is_abandoned_and_the_writer_ends():
    conn, _ = make(StuckSocket(), grace=0.01)
    conn.follow("t")
    conn.send_event(event(1), "alice")
    await asyncio.sleep(0)  # the writer is now stuck in its first send
    conn.request_close(4408)
    await asyncio.wait_for(conn.wait_closed(), 5)
    assert conn.abandoned and conn.closed


async def test_the_read_loop_ends_once_the_writer_is_done_closing():
    conn, _ = make(StuckSocket(), grace=0.01)
    stopped = asyncio.Event()

    async def read_forever() -> None:
        with conn.reading():
            await asyncio.Event().wait()  # a peer that never sends again
        stopped.set()

    reader = asyncio.create_task(read_forever())
    await asyncio.sleep(0)
    conn.request_close(4408)  # the peer never lets the close through either
    await asyncio.wait_for(reader, 5)
    assert stopped.is_set() and not reader.cancelled()


async def test_an_idle_connection_holds_no_writer_and_no_queue():
    conn, _ = make(RecordingSocket())
    conn.send_frame(Ping(ts=1.0))
    assert conn.queued_bytes > 0
    while conn.queued_bytes:
        await asyncio.sleep(0)
    await asyncio.sleep(0)  # the writer ends once the queue is empty
    assert not conn.writing
    conn.send_frame(Ping(ts=2.0))  # the next frame starts another writer
    assert [frame.get("ts") for frame in await drained(conn)] == [1.0, 2.0, None]


async def test_a_replay_waits_for_room_while_the_queue_is_over_half_full():
    socket = GatedSocket()
    conn, _ = make(socket, max_queue_bytes=64 * 1024)
    conn.follow("t")
    while conn.queued_bytes <= 40 * 1024:  # over half even with one frame in flight
        conn.send_replayed(EncodedEvent.of(event(1, "x" * 4000)))
    waiting = asyncio.create_task(conn.room())
    await asyncio.sleep(0)
    assert not waiting.done()
    socket.gate.set()  # the client reads: the queue drains
    assert await asyncio.wait_for(waiting, 5) is True
    await drained(conn)


async def test_a_replay_waiting_for_room_stops_when_the_connection_closes():
    conn, _ = make(RecordingSocket(), max_queue_bytes=64 * 1024)
    while conn.queued_bytes <= 32 * 1024:
        conn.send_replayed(EncodedEvent.of(event(1, "x" * 4000)))
    waiting = asyncio.create_task(conn.room())
    conn.request_close(4408)
    assert await asyncio.wait_for(waiting, 5) is False
