"""The project's Python client for the v1 protocol (used by the canary, the load generator
and the tests): authenticates in the handshake, drops duplicate events by seq, acks every
event it hands to the application, and answers pings."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

SUBPROTOCOL = "vigil.v1"
EVENT_TYPES = frozenset(
    {
        "agent_started",
        "agent_thinking",
        "tool_executing",
        "tool_completed",
        "agent_completed",
        "agent_error",
    }
)

__all__ = ["ConnectionClosed", "HandshakeRefused", "RunResult", "VigilClient"]


class HandshakeRefused(Exception):
    """The server answered the handshake with an HTTP refusal."""

    def __init__(self, status: int, reason: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(f"handshake refused: HTTP {status} {reason}")
        self.status = status
        self.reason = reason
        self.body = body or {}


@dataclass
class RunResult:
    accepted: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def types(self) -> list[str]:
        return [event["type"] for event in self.events]

    @property
    def completed(self) -> dict[str, Any]:
        return self.events[-1]


class VigilClient:
    def __init__(self, websocket: ClientConnection, ready: dict[str, Any]) -> None:
        self.websocket = websocket
        self.ready = ready
        self.other_frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._seen: dict[str, int] = {}
        self._reader = asyncio.create_task(self._read())
        self.duplicates_dropped = 0

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls, ws_url: str, token: str, *, open_timeout: float = 10.0, via_header: bool = False
    ) -> AsyncIterator[VigilClient]:
        client = await cls.open(ws_url, token, open_timeout=open_timeout, via_header=via_header)
        try:
            yield client
        finally:
            await client.close()

    @classmethod
    async def open(
        cls, ws_url: str, token: str, *, open_timeout: float = 10.0, via_header: bool = False
    ) -> VigilClient:
        if via_header:
            options: dict[str, Any] = {
                "subprotocols": [SUBPROTOCOL],
                "additional_headers": {"Authorization": f"Bearer {token}"},
            }
        else:
            options = {"subprotocols": [SUBPROTOCOL, f"bearer.{token}"]}
        try:
            websocket = await connect(
                ws_url, open_timeout=open_timeout, max_size=2**22, ping_interval=None, **options
            )
        except InvalidStatus as exc:
            raise _refusal(exc) from exc
        ready = json.loads(await asyncio.wait_for(websocket.recv(), open_timeout))
        if ready.get("type") != "connection_ready":
            await websocket.close()
            raise ConnectionError(f"expected connection_ready, got {ready.get('type')!r}")
        return cls(websocket, ready)

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in self.websocket:
                frame = json.loads(raw)
                kind = frame.get("type")
                if kind == "ping":
                    await self.send({"type": "pong", "ts": frame.get("ts")})
                elif kind in EVENT_TYPES:
                    await self._on_event(frame)
                else:
                    self.other_frames.put_nowait(frame)

    async def _on_event(self, event: dict[str, Any]) -> None:
        thread_id, seq = event["thread_id"], event["seq"]
        if seq <= self._seen.get(thread_id, 0):
            self.duplicates_dropped += 1
        else:
            self._seen[thread_id] = seq
            self._events.put_nowait(event)
        await self.send({"type": "ack", "thread_id": thread_id, "seq": self._seen[thread_id]})

    async def send(self, frame: dict[str, Any]) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self.websocket.send(json.dumps(frame))

    async def next_frame(self, timeout: float) -> dict[str, Any]:
        """The next frame that is not an agent event or a ping (chat_accepted, error, ...)."""
        return await self._next(self.other_frames, timeout)

    async def next_event(self, timeout: float) -> dict[str, Any]:
        return await self._next(self._events, timeout)

    async def _next(self, queue: asyncio.Queue[dict[str, Any]], timeout: float) -> dict[str, Any]:
        getter = asyncio.ensure_future(queue.get())
        done, _ = await asyncio.wait(
            {getter, self._reader}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if getter in done:
            return getter.result()
        getter.cancel()
        if self._reader in done:
            await self.websocket.recv()  # raises the ConnectionClosed that ended the reader
            raise ConnectionError("the connection ended")
        raise TimeoutError(f"nothing received within {timeout} s")

    async def chat(
        self,
        text: str,
        thread_id: str | None = None,
        msg_id: str | None = None,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        msg_id = msg_id or uuid.uuid4().hex
        await self.send({"type": "chat", "id": msg_id, "thread_id": thread_id, "text": text})
        reply = await self.next_frame(timeout)
        if reply.get("type") != "chat_accepted":
            raise RuntimeError(f"chat refused: {reply}")
        return reply

    async def run(
        self, text: str, thread_id: str | None = None, timeout: float = 30.0
    ) -> RunResult:
        """Send a chat and collect its events up to its ``agent_completed``."""
        result = RunResult(await self.chat(text, thread_id))
        run_id = result.accepted["run_id"]
        while True:
            event = await self.next_event(timeout)
            if event["run_id"] != run_id:
                continue
            result.events.append(event)
            if event["type"] == "agent_completed":
                return result

    async def close(self) -> None:
        await self.websocket.close()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


def _refusal(exc: InvalidStatus) -> HandshakeRefused:
    status = exc.response.status_code
    try:
        body = json.loads(exc.response.body or b"{}")
    except json.JSONDecodeError:
        body = {}
    return HandshakeRefused(status, str(body.get("reason", "unknown")), body)
