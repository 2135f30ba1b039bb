"""``VigilClient``: one logical session over the v1 protocol. It hands each thread's events
to the application exactly once and in seq order (duplicates dropped; with ``Reconnect``,
events past a gap held until it is filled), acks them and answers pings.

With ``reconnect=Reconnect(...)`` it survives a lost connection, following the close-code
table of PROTOCOL.md: it comes back with exponential backoff and full jitter (at once after
1012), resumes every thread it follows from the last seq it handed over, and when a resume
cannot recover, backfills the thread over REST. Without it, a closed connection ends the
client, which is what the canary wants to see.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from core.client.backfill import stored_events
from core.client.handshake import Endpoint, HandshakeRefused, handshake
from core.client.pending import PendingChats, ResumeQueue
from core.delivery.reconnect import Backoff, Next, after_close, after_refusal
from core.delivery.resume import Inbound

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


@dataclass(frozen=True)
class Reconnect:
    """How the client comes back. ``rng`` and ``sleep`` are injectable for tests;
    ``token`` gives a fresh token after 4401 (without it, 4401 ends the client)."""

    backoff: Backoff = field(default_factory=Backoff)
    rng: random.Random = field(default_factory=random.Random)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    token: Callable[[], str] | None = None
    # A resume refused as rate_limited (or unavailable) is sent again after this long.
    resume_retry_s: float = 0.5


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
        # What the automatic resumes answered, and how often the client came back.
        self.resumed: list[dict[str, Any]] = []
        self.reconnects = 0
        self.backfilled = 0
        self.backfill_errors: list[str] = []
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._endpoint = endpoint
        self._reconnect = reconnect
        self._resumes = ResumeQueue()
        self._resume_retry: asyncio.Task[None] | None = None
        self._chats = PendingChats()
        self._closing = False
        self._reader = asyncio.create_task(self._run())

    @property
    def duplicates_dropped(self) -> int:
        return self.inbound.duplicates

    @property
    def resume_errors(self) -> list[dict[str, Any]]:
        """Resumes refused for good (not_found: the thread is no longer this user's)."""
        return self._resumes.errors

    @property
    def resume_retries(self) -> int:
        return self._resumes.retries

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
            if self._closing or self._reconnect is None or self._endpoint is None:
                return
            if not await self._come_back(after_close(self.websocket.close_code)):
                return

    async def _read(self, websocket: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in websocket:
                frame = json.loads(raw)
                kind = frame.get("type")
                if kind == "ping":
                    await self.send({"type": "pong", "ts": frame.get("ts")})
                elif kind in EVENT_TYPES:
                    await self._on_events([frame])
                elif self._resumes.answers(frame):
                    await self._on_resume_answer(frame)
                else:
                    if kind == "chat_accepted":
                        self.inbound.follow(frame["thread_id"], frame.get("epoch"))
                    if not self._chats.answer(frame):
                        self.other_frames.put_nowait(frame)

    async def _on_events(self, events: list[dict[str, Any]]) -> None:
        threads: set[str] = set()
        for event in events:
            threads.add(event["thread_id"])
            for ready in self.inbound.offer(event):
                self._events.put_nowait(ready)
        for thread_id in threads:
            seq = self.inbound.ack_seq(thread_id)
            if seq > 0:
                await self.send({"type": "ack", "thread_id": thread_id, "seq": seq})

    async def _on_resumed(self, frame: dict[str, Any]) -> None:
        thread_id = frame["thread_id"]
        self.resumed.append(frame)
        if frame.get("epoch"):
            self.inbound.rebase(thread_id, frame["epoch"])
        if not frame.get("recovered") or self.inbound.has_gap(thread_id):
            try:
                await self._backfill(thread_id)
            except (httpx.HTTPError, KeyError, ValueError) as exc:
                # The gap stays held; the next resume (or a later backfill) fills it.
                self.backfill_errors.append(f"{thread_id}: {type(exc).__name__}: {exc}")

    async def _backfill(self, thread_id: str) -> None:
        """Fetch the thread's stored events after the last one handed over (the source of
        truth when a resume cannot recover)."""
        assert self._endpoint is not None
        after = self.inbound.ack_seq(thread_id)
        timeout = self._endpoint.open_timeout
        pages = stored_events(
            self._endpoint.http_url, self._token(), thread_id, after, timeout=timeout
        )
        async for events in pages:
            self.backfilled += len(events)
            await self._on_events(events)

    # --- reconnecting --------------------------------------------------------------------

    async def _come_back(self, decision: Next) -> bool:
        """Reconnect and resume; False when the close code or a refusal says stop."""
        assert self._reconnect is not None and self._endpoint is not None
        policy = self._reconnect
        if decision is Next.STOP or (decision is Next.REFRESH_TOKEN and policy.token is None):
            return False
        attempt = 0
        at_once = decision in (Next.RECONNECT_NOW, Next.REFRESH_TOKEN)
        while not self._closing:
            if not (at_once and attempt == 0):
                if policy.backoff.exhausted(attempt):
                    return False
                await policy.sleep(policy.backoff.delay(attempt, policy.rng))
            attempt += 1
            try:
                self.websocket, self.ready = await handshake(self._endpoint, self._token())
            except HandshakeRefused as refusal:
                refused = after_refusal(refusal.status)
                if refused is Next.STOP or (refused is Next.REFRESH_TOKEN and not policy.token):
                    return False
                continue
            except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed, ConnectionError):
                continue
            self.reconnects += 1
            await self._resume_all()
            for frame in self._chats.unanswered():
                await self.send(frame)
            return True
        return False

    async def _resume_all(self) -> None:
        if self._resume_retry is not None:
            self._resume_retry.cancel()
        self._resumes.restart(thread_id for thread_id, _, _ in self.inbound.resume_points())
        await self._resume_next()

    async def _on_resume_answer(self, frame: dict[str, Any]) -> None:
        if frame["type"] == "resumed":
            await self._on_resumed(frame)
        elif self._resumes.refused(frame):
            # Over the frame budget, or a database hiccup: the same thread a little later,
            # reading going on meanwhile.
            assert self._reconnect is not None
            self._resume_retry = asyncio.create_task(
                self._resume_later(self._reconnect.resume_retry_s)
            )
            return
        await self._resume_next()

    async def _resume_later(self, delay_s: float) -> None:
        # A real wait, not the injected one: the server's budget refills in real time.
        await asyncio.sleep(delay_s)
        await self._resume_next()

    async def _resume_next(self) -> None:
        """Resume the next followed thread from the last seq handed over (read now, not at
        reconnect time: the thread may have moved on meanwhile)."""
        thread_id = self._resumes.next()
        if thread_id is None:
            return
        cursor = self.inbound.threads[thread_id]
        await self.send(
            {
                "type": "resume",
                "thread_id": thread_id,
                "epoch": cursor.epoch,
                "last_seq": cursor.resume_from,
            }
        )

    def _token(self) -> str:
        assert self._endpoint is not None
        if self._reconnect is not None and self._reconnect.token is not None:
            return self._reconnect.token()
        return self._endpoint.token

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
        self._closing = True
        if self._resume_retry is not None:
            self._resume_retry.cancel()
        await self.websocket.close()
        if not self._reader.done():
            # It may be waiting out a backoff delay: nothing there is worth finishing.
            self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
