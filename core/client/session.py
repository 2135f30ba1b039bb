"""``VigilClient``: one logical session over the v1 protocol. It hands each thread's events
to the application exactly once and in seq order (duplicates dropped; with ``Reconnect``,
events past a gap held until it is filled), acks them and answers pings.

With ``reconnect=Reconnect(...)`` it survives a lost connection, following the close-code
table of PROTOCOL.md (``core.client.recovery``: reconnect, resume, REST backfill). Without
it, a closed connection ends the client, which is what the canary wants to see.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, get_args

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from core.client.handshake import Endpoint, handshake
from core.client.pending import PendingChats
from core.client.recovery import Reconnect, Recovery
from core.delivery.reconnect import after_close
from core.delivery.resume import Inbound
from core.protocol import EventType

EVENT_TYPES: frozenset[str] = frozenset(get_args(EventType))


class ChatRefused(RuntimeError):
    """The server answered a chat with an ``error`` frame (its ``code`` says why)."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"chat refused: {error}")
        self.error = error
        self.code = str(error.get("code"))


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
    def __init__(
        self,
        websocket: ClientConnection,
        ready: dict[str, Any],
        *,
        endpoint: Endpoint | None = None,
        reconnect: Reconnect | None = None,
    ) -> None:
        self.websocket = websocket
        self.ready = ready
        self.other_frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.inbound = Inbound(hold_gaps=reconnect is not None)
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._recovery = (
            Recovery(self, endpoint, reconnect)
            if reconnect is not None and endpoint is not None
            else None
        )
        self._chats = PendingChats()
        self._closing = False
        self._reader = asyncio.create_task(self._run())

    @property
    def duplicates_dropped(self) -> int:
        return self.inbound.duplicates

    # What the automatic resumes answered, how often the client came back, what REST brought.
    @property
    def resumed(self) -> list[dict[str, Any]]:
        return self._recovery.resumed if self._recovery else []

    @property
    def reconnects(self) -> int:
        return self._recovery.reconnects if self._recovery else 0

    @property
    def backfilled(self) -> int:
        return self._recovery.backfilled if self._recovery else 0

    @property
    def backfill_errors(self) -> list[str]:
        return self._recovery.backfill_errors if self._recovery else []

    @property
    def resume_errors(self) -> list[dict[str, Any]]:
        """Resumes refused for good (not_found: the thread is no longer this user's)."""
        return self._recovery.resume_errors if self._recovery else []

    @property
    def resume_retries(self) -> int:
        return self._recovery.resume_retries if self._recovery else 0

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls,
        ws_url: str,
        token: str,
        *,
        open_timeout: float = 10.0,
        via_header: bool = False,
        reconnect: Reconnect | None = None,
    ) -> AsyncIterator[VigilClient]:
        client = await cls.open(
            ws_url, token, open_timeout=open_timeout, via_header=via_header, reconnect=reconnect
        )
        try:
            yield client
        finally:
            await client.close()

    @classmethod
    async def open(
        cls,
        ws_url: str,
        token: str,
        *,
        open_timeout: float = 10.0,
        via_header: bool = False,
        reconnect: Reconnect | None = None,
    ) -> VigilClient:
        endpoint = Endpoint(ws_url, token, open_timeout, via_header)
        websocket, ready = await handshake(endpoint, token)
        return cls(websocket, ready, endpoint=endpoint, reconnect=reconnect)

    # --- reading -------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await self._read(self.websocket)
            if self._closing or self._recovery is None:
                return
            decision = after_close(self.websocket.close_code)
            connection = await self._recovery.reconnect(decision, lambda: self._closing)
            if connection is None:
                return
            self.websocket, self.ready = connection
            await self._recovery.resume_all()
            for frame in self._chats.unanswered():
                await self.send(frame)

    async def _read(self, websocket: ClientConnection) -> None:
        recovery = self._recovery
        with contextlib.suppress(ConnectionClosed):
            async for raw in websocket:
                frame = json.loads(raw)
                kind = frame.get("type")
                if kind == "ping":
                    await self.send({"type": "pong", "ts": frame.get("ts")})
                elif kind in EVENT_TYPES:
                    await self.deliver([frame])
                elif recovery is not None and recovery.answers(frame):
                    await recovery.on_answer(frame)
                else:
                    if kind == "chat_accepted":
                        self.inbound.follow(frame["thread_id"], frame.get("epoch"))
                    if not self._chats.answer(frame):
                        self.other_frames.put_nowait(frame)

    async def deliver(self, events: list[dict[str, Any]]) -> None:
        """Hand received events to the application (each once, in order) and ack them."""
        threads: set[str] = set()
        for event in events:
            threads.add(event["thread_id"])
            for ready in self.inbound.offer(event):
                self._events.put_nowait(ready)
        for thread_id in threads:
            seq = self.inbound.ack_seq(thread_id)
            if seq > 0:
                await self.send({"type": "ack", "thread_id": thread_id, "seq": seq})
            if self._recovery is not None and self.inbound.has_gap(thread_id):
                self._recovery.watch_gap(thread_id)

    # --- the application's side ----------------------------------------------------------

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
        try:
            return await self._wait(getter, timeout)
        finally:
            getter.cancel()

    async def _wait(self, answer: asyncio.Future[dict[str, Any]], timeout: float) -> dict[str, Any]:
        """``answer``'s result, unless the client ends or ``timeout`` passes first."""
        waiters: set[asyncio.Future[Any]] = {answer, self._reader}
        done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if answer in done:
            return answer.result()
        if self._reader in done:
            if self._reader.exception() is not None:
                raise ConnectionError("the client's reader failed") from self._reader.exception()
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
        frame = {"type": "chat", "id": msg_id, "thread_id": thread_id, "text": text}
        answer = self._chats.open(msg_id, frame)
        try:
            await self.send(frame)
            reply = await self._wait(answer, timeout)
        finally:
            self._chats.close(msg_id)
        if reply.get("type") != "chat_accepted":
            raise ChatRefused(reply)
        return reply

    async def run(
        self,
        text: str,
        thread_id: str | None = None,
        timeout: float = 30.0,
        *,
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> RunResult:
        """Send a chat and collect its events up to its ``agent_completed``; ``timeout``
        bounds the wait for the chat's answer and for each event. ``on_event`` sees each of
        the run's events as it is taken (the load generator times them there)."""
        result = RunResult(await self.chat(text, thread_id, timeout=timeout))
        run_id = result.accepted["run_id"]
        while True:
            event = await self.next_event(timeout)
            if event["run_id"] != run_id:
                continue
            if on_event is not None:
                on_event(event)
            result.events.append(event)
            if event["type"] == "agent_completed":
                return result

    async def close(self) -> None:
        self._closing = True
        await self.websocket.close()
        if not self._reader.done():
            # It may be waiting out a backoff delay: nothing there is worth finishing.
            self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        if self._recovery is not None:
            await self._recovery.close()
