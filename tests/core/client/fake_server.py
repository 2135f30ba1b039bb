"""A scripted v1 server for the client's tests: a real WebSocket server whose connections
are handed to the test, which reads what the client sends and sends what it chooses (an
error at the wrong moment, a ping in the middle of a backfill), and a REST side served by
an ``httpx.MockTransport`` over the thread's stored events."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
from websockets.asyncio.server import ServerConnection, serve

from core.client import SUBPROTOCOL

Frame = dict[str, Any]
WAIT_S = 10.0


def event(
    thread_id: str,
    seq: int,
    *,
    epoch: str = "e1",
    kind: str = "agent_thinking",
    run_id: str = "r1",
    data: Frame | None = None,
) -> Frame:
    """An agent event with the whole envelope."""
    return {
        "type": kind,
        "thread_id": thread_id,
        "run_id": run_id,
        "epoch": epoch,
        "seq": seq,
        "event_id": f"{thread_id}-{epoch}-{seq}",
        "ts": "2026-11-26T10:00:00+00:00",
        "data": data if data is not None else {"text": "…", "step": seq},
    }


class FakeConnection:
    def __init__(self, websocket: ServerConnection) -> None:
        self.websocket = websocket

    async def send(self, frame: Frame) -> None:
        await self.websocket.send(json.dumps(frame))

    async def receive(self, kind: str) -> Frame:
        """The next frame of type ``kind`` the client sends (others are passed over)."""
        while True:
            frame: Frame = json.loads(await asyncio.wait_for(self.websocket.recv(), WAIT_S))
            if frame.get("type") == kind:
                return frame

    async def close(self, code: int) -> None:
        await self.websocket.close(code)


class FakeServer:
    def __init__(self) -> None:
        self.connections: asyncio.Queue[FakeConnection] = asyncio.Queue()
        self.ws_url = ""

    async def accepted(self) -> FakeConnection:
        """The next connection the client opens (after its ``connection_ready``)."""
        return await asyncio.wait_for(self.connections.get(), WAIT_S)

    async def _handle(self, websocket: ServerConnection) -> None:
        connection = FakeConnection(websocket)
        await connection.send(
            {
                "type": "connection_ready",
                "connection_id": "c",
                "user_id": "alice",
                "protocol": SUBPROTOCOL,
                "heartbeat_interval_s": 15,
                "server_time": "2026-11-26T10:00:00+00:00",
            }
        )
        self.connections.put_nowait(connection)
        await websocket.wait_closed()


@contextlib.asynccontextmanager
async def fake_server() -> AsyncIterator[FakeServer]:
    server = FakeServer()
    async with serve(server._handle, "127.0.0.1", 0, subprotocols=[SUBPROTOCOL]) as running:
        port = next(iter(running.sockets)).getsockname()[1]
        server.ws_url = f"ws://127.0.0.1:{port}/ws"
        yield server


def stored_events(
    events: list[Frame], before_answer: Callable[[], Awaitable[None]] | None = None
) -> httpx.MockTransport:
    """``GET /api/threads/{id}/events`` over ``events``; ``before_answer`` runs before each
    page is answered (a test holds the page there)."""

    async def handle(request: httpx.Request) -> httpx.Response:
        if before_answer is not None:
            await before_answer()
        after = int(request.url.params["after_seq"])
        page = [e for e in events if e["seq"] > after]
        last = page[-1]["seq"] if page else after
        return httpx.Response(200, json={"events": page, "next_after_seq": last})

    return httpx.MockTransport(handle)
