"""Clients that stop reading or stop answering: closed with their documented code, their
resources freed, the server's memory bounded whatever they are sent."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import random
import socket
import string
import tracemalloc
import weakref

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from core.client import VigilClient
from tests.integration.runs import eventually

QUEUE_BOUND = 64 * 1024
# Six runs of this many letters make a replay of about 300 KB: forty replays are far more than
# the kernel's socket buffers (the server's grows to 4 MiB on loopback) and the client's.
TEXT_CHARS = 50_000
# What the process still holds after the client is gone, less the span buffer (bounded by
# VIGIL_TRACE_BUFFER_SPANS, and filled by the runs and queries of the test itself).
NOT_SPANS = [tracemalloc.Filter(False, "*/opentelemetry/*", all_frames=True)]


def big_text(rng: random.Random) -> str:
    """Letters at random, different each time: per-message deflate (which keeps a 32 KiB
    window across messages) cannot shrink them away, so the bytes really reach the wire."""
    return "Tell me about " + "".join(rng.choices(string.ascii_lowercase, k=TEXT_CHARS))


def subprotocols(server, user: str) -> list[str]:
    return ["vigil.v1", f"bearer.{server.token(user)}"]


async def big_thread(client: VigilClient, rng: random.Random, runs: int = 6) -> list[dict]:
    first = await client.run(big_text(rng))
    events = list(first.events)
    for _ in range(runs - 1):
        events += (await client.run(big_text(rng), thread_id=first.accepted["thread_id"])).events
    return events


async def test_a_history_longer_than_the_send_queue_is_replayed_whole_to_a_client_that_reads(
    start_server,
):
    server = await start_server(send_queue_bytes=QUEUE_BOUND, max_text_chars=TEXT_CHARS + 100)
    async with VigilClient.connect(server.ws_url, server.token("bob")) as bob:
        events = await big_thread(bob, random.Random(9))
    thread_id = events[0]["thread_id"]
    assert await history_bytes(server, thread_id) > 4 * QUEUE_BOUND
    async with VigilClient.connect(server.ws_url, server.token("bob")) as again:
        await again.send(
            {"type": "resume", "thread_id": thread_id, "epoch": events[0]["epoch"], "last_seq": 0}
        )
        resumed = await again.next_frame(30)
        replayed = [await again.next_event(5) for _ in events]
    assert (resumed["recovered"], resumed["replayed"]) == (True, len(events))
    assert [e["event_id"] for e in replayed] == [e["event_id"] for e in events]
    assert server.metric("vigil_ws_disconnects_total", {"code": "4409"}) == 0


async def test_a_client_that_stops_reading_is_closed_with_4409_and_its_memory_freed(
    start_server,
):
    server = await start_server(send_queue_bytes=QUEUE_BOUND, max_text_chars=TEXT_CHARS + 100)
    rng = random.Random(9)
    async with VigilClient.connect(server.ws_url, server.token("bob")) as bob:
        history = await big_thread(bob, rng)
        live = await bob.run("hello")
        thread_id, live_thread = history[0]["thread_id"], live.accepted["thread_id"]
        history_size = await history_bytes(server, thread_id)

        # A socket with a tiny receive buffer, and a client that never calls recv().
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, tuple_of(server.base_url))
        websocket = await connect(
            server.ws_url, sock=sock, subprotocols=subprotocols(server, "bob"), ping_interval=None
        )
        await eventually(lambda: server.services.hub.count("bob") == 2)
        [connection] = [c for c in server.services.hub.all() if c.follows(live_thread) is False]
        gone = weakref.ref(connection)
        del connection

        tracemalloc.start(3)
        try:
            baseline, _ = tracemalloc.get_traced_memory()
            before = tracemalloc.take_snapshot().filter_traces(NOT_SPANS)
            epoch = history[0]["epoch"]
            last = live.events[-1]["seq"]
            # Follow a second thread, then ask for the long history over and over.
            frames = [
                {"type": "resume", "thread_id": live_thread, "epoch": epoch, "last_seq": last}
            ]
            replays = server.settings.rate_limit_burst - 1
            resume = {"type": "resume", "thread_id": thread_id, "epoch": epoch, "last_seq": 0}
            frames += [resume] * replays
            for frame in frames:
                await websocket.send(json.dumps(frame))
            # Live events on the followed thread meanwhile, until the queue overflows.
            closed = {"code": "4409"}
            runs = 0
            while server.metric("vigil_ws_disconnects_total", closed) == 0 and runs < 20:
                await bob.run(big_text(rng), thread_id=live_thread)
                runs += 1
            await eventually(lambda: server.metric("vigil_ws_disconnects_total", closed) == 1)
            await eventually(lambda: server.services.hub.count("bob") == 1)
            # The test's own non-reading client holds what it was sent: let it go too.
            websocket.transport.abort()
            await websocket.wait_closed()
            gc.collect()
            _, peak = tracemalloc.get_traced_memory()
            after = tracemalloc.take_snapshot().filter_traces(NOT_SPANS)
            kept = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
        finally:
            tracemalloc.stop()
            websocket.transport.abort()

    asked = replays * history_size
    assert asked > 50 * QUEUE_BOUND  # far more than a bounded server would ever hold
    assert peak - baseline < asked / 2, (peak - baseline, asked)
    assert kept < asked / 8, (kept, asked)
    assert gone() is None  # the connection, its queue and its merges are garbage
    assert "slow_consumer_closed" in server.logs.getvalue()


async def history_bytes(server, thread_id: str) -> int:
    """The size of one full replay of the thread, as frames on the wire."""
    records = await server.services.repository.list_events("bob", thread_id, 0, 1000)
    return sum(len(json.dumps(record.payload)) for record in records)


def tuple_of(base_url: str) -> tuple[str, int]:
    host, port = base_url.removeprefix("http://").split(":")
    return host, int(port)


async def test_a_client_that_never_answers_pings_is_closed_with_4408_and_forgotten(
    start_server,
):
    server = await start_server(heartbeat_interval_s=0.2)
    async with connect(
        server.ws_url, subprotocols=subprotocols(server, "alice"), ping_interval=None
    ) as websocket:
        pings = 0
        with contextlib.suppress(ConnectionClosed):
            async for raw in websocket:  # reads everything, answers nothing
                pings += json.loads(raw)["type"] == "ping"
        assert websocket.close_code == 4408
    assert pings >= 2
    await eventually(lambda: server.services.hub.total() == 0)
    assert server.metric("vigil_ws_disconnects_total", {"code": "4408"}) == 1
    assert server.metric("vigil_ws_active_connections") == 0
