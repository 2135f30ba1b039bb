"""Test doubles that speak over real sockets: a backend that speaks the protocol badly, and a
way to serve an ASGI app (the sidecar) from a thread so sync CLI code can call it."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn
from starlette.types import ASGIApp
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

Script = list[dict[str, Any]]


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def event(kind: str, seq: int, **data: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "thread_id": "t1",
        "run_id": "r1",
        "epoch": "e1",
        "seq": seq,
        "event_id": f"ev{seq}",
        "ts": "2026-01-01T00:00:00Z",
        "data": data,
    }


def a_run() -> Script:
    return [
        event("agent_started", 1, agent="a", message="m"),
        event("agent_thinking", 2, text="t", step=1),
        event("tool_executing", 3, tool="calculator", call_id="c1", arguments={}),
        event("tool_completed", 4, tool="calculator", call_id="c1", status="ok", result="391"),
        event("agent_completed", 5, status="completed", text="391", usage={}, duration_ms=1),
    ]


@contextlib.asynccontextmanager
async def scripted_backend(
    script: Script, *, refuse: int | None = None, close: int | None = None
) -> AsyncIterator[str]:
    """A /ws that accepts, says connection_ready, accepts the chat, then sends ``script``
    and stays silent (or closes with code ``close``, or refuses the handshake with HTTP
    ``refuse``)."""

    def process_request(_: ServerConnection, __: Request) -> Response | None:
        if refuse is None:
            return None
        body = json.dumps({"error": "unavailable", "reason": "not_ready"}).encode()
        return Response(refuse, "Refused", Headers({"Content-Type": "application/json"}), body)

    async def handler(websocket: ServerConnection) -> None:
        ready = {"type": "connection_ready", "connection_id": "c", "user_id": "u"}
        await websocket.send(json.dumps({**ready, "protocol": "vigil.v1"}))
        chat = json.loads(await websocket.recv())
        accepted = {"type": "chat_accepted", "id": chat["id"], "thread_id": "t1", "run_id": "r1"}
        await websocket.send(json.dumps(accepted))
        for frame in script:
            await websocket.send(json.dumps(frame))
        if close is not None:
            await websocket.close(close)
            return
        async for _ in websocket:  # acks: read and ignore until the client leaves
            pass

    async with serve(
        handler,
        "127.0.0.1",
        0,
        subprotocols=[Subprotocol("vigil.v1")],
        process_request=process_request,
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/ws"


@contextlib.contextmanager
def serve_in_thread(app: ASGIApp) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free port in a thread; yields its base URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_config=None, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the sidecar did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)
