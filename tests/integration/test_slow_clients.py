"""Clients that stop reading or stop answering: closed with their documented code, their
resources freed, the server's memory bounded whatever they are sent."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import socket
import tracemalloc
import weakref

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from core.client import VigilClient
from tests.integration.runs import eventually

QUEUE_BOUND = 64 * 1024
BIG_TEXT = "What is 1 + 1? " + "x" * 7000


def subprotocols(server, user: str) -> list[str]:
    return ["vigil.v1", f"bearer.{server.token(user)}"]


async def test_a_client_that_stops_reading_is_closed_with_4409_and_its_memory_freed(
    start_server,
):
    server = await start_server(send_queue_bytes=QUEUE_BOUND)
    async with VigilClient.connect(server.ws_url, server.token("bob")) as bob:
        first = await bob.run(BIG_TEXT)
        thread_id = first.accepted["thread_id"]
        for _ in range(5):
            await bob.run(BIG_TEXT, thread_id=thread_id)
    epoch = first.events[0]["epoch"]
    history = await bob_history_bytes(server, thread_id)

    # A socket with a tiny receive buffer, and a client that never calls recv().
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, tuple_of(server.base_url))
    websocket = await connect(
        server.ws_url, sock=sock, subprotocols=subprotocols(server, "bob"), ping_interval=None
    )
    await eventually(lambda: server.services.hub.count("bob") == 1)
    [connection] = server.services.hub.all()
    gone = weakref.ref(connection)
    del connection

    tracemalloc.start()
    try:
        baseline, _ = tracemalloc.get_traced_memory()
        resume = {"type": "resume", "thread_id": thread_id, "epoch": epoch, "last_seq": 0}
        sent = 40  # the burst the frame rate limit allows
        for _ in range(sent):
            await websocket.send(json.dumps(resume))
        closed = {"code": "4409"}
        await eventually(lambda: server.metric("vigil_ws_disconnects_total", closed) == 1)
        gc.collect()
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        websocket.transport.abort()

    asked = sent * history
    assert server.metric("vigil_ws_disconnects_total", {"code": "4409"}) == 1
    assert asked > 10 * QUEUE_BOUND  # far more than a bounded server would ever hold
    assert peak - baseline < asked / 2, (peak - baseline, asked)
    assert after - baseline < asked / 4, (after - baseline, asked)
    assert server.services.hub.count("bob") == 0
    assert gone() is None  # the connection, its queue and its merges are garbage
    assert server.metric("vigil_ws_active_connections") == 0
    assert "slow_consumer_closed" in server.logs.getvalue()


async def bob_history_bytes(server, thread_id: str) -> int:
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
