"""One accepted WebSocket connection: its identity, the threads it follows, and a bounded
send queue drained by a writer task, so a slow reader never blocks a run or another user."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

from pydantic import BaseModel
from starlette.websockets import WebSocket, WebSocketDisconnect

from core.delivery.resume import ReplayMerge
from core.protocol import AgentEvent
from core.telemetry.logging import get_logger
from core.telemetry.metrics import Metrics

log = get_logger(__name__)

CLOSE_SLOW_CONSUMER = 4409
# Once a close is requested, a send (or the close itself) that the peer does not let through
# within this time is abandoned: a client that stops reading cannot hold the writer forever.
CLOSE_GRACE_S = 1.0


class Connection:
    def __init__(
        self,
        websocket: WebSocket,
        *,
        connection_id: str,
        user_id: str,
        canary: bool,
        metrics: Metrics,
        max_queue_bytes: int,
        close_grace_s: float = CLOSE_GRACE_S,
    ) -> None:
        self.websocket = websocket
        self.id = connection_id
        self.user_id = user_id
        self.canary = canary
        self._metrics = metrics
        self._max_queue_bytes = max_queue_bytes
        self._close_grace_s = close_grace_s
        self._closing = asyncio.Event()
        self.abandoned = False
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._queued_bytes = 0
        self._following: set[str] = set()
        # Threads being resumed: their live events wait in the merge until the replay is out.
        self._resuming: dict[str, ReplayMerge[AgentEvent]] = {}
        self.close_code: int | None = None
        self._peer_closed = False
        self.closed = asyncio.Event()

    def follow(self, thread_id: str) -> None:
        self._following.add(thread_id)

    def follows(self, thread_id: str) -> bool:
        return thread_id in self._following

    def begin_resume(self, thread_id: str, merge: ReplayMerge[AgentEvent]) -> None:
        """Follow the thread, holding its live events in ``merge`` until ``end_resume``."""
        self._resuming[thread_id] = merge
        self.follow(thread_id)

    def end_resume(self, thread_id: str) -> None:
        self._resuming.pop(thread_id, None)

    @property
    def queued_bytes(self) -> int:
        return self._queued_bytes

    def send_frame(self, frame: BaseModel) -> None:
        self._enqueue(frame.model_dump_json())

    def send_event(self, event: AgentEvent, owner_user_id: str) -> bool:
        """Queue an agent event, unless it belongs to another user (the isolation guard)."""
        if owner_user_id != self.user_id:
            self._metrics.isolation_violations.inc()
            log.critical(
                "isolation_violation_blocked",
                connection_id=self.id,
                connection_user=self.user_id,
                event_user=owner_user_id,
                thread_id=event.thread_id,
                run_id=event.run_id,
                seq=event.seq,
            )
            return False
        merge = self._resuming.get(event.thread_id)
        if merge is not None:
            merge.hold(event.seq, event)
            return True
        self._enqueue(event.model_dump_json())
        return True

    def _enqueue(self, payload: str) -> None:
        if self.close_code is not None:
            return
        size = len(payload)
        if self._queued_bytes + size > self._max_queue_bytes:
            # The client does not read; its events wait in the log for its resume. What is
            # queued will never be read: free it now.
            log.warning("slow_consumer_closed", connection_id=self.id, queued=self._queued_bytes)
            while not self._queue.empty():
                self._queue.get_nowait()
            self._queued_bytes = 0
            self.request_close(CLOSE_SLOW_CONSUMER)
            return
        self._queued_bytes += size
        self._queue.put_nowait(payload)

    def request_close(self, code: int) -> None:
        if self.close_code is None:
            self.close_code = code
            self._closing.set()
            self._queue.put_nowait(None)

    def peer_closed(self, code: int) -> None:
        """The client closed the socket: stop the writer without closing it again."""
        self._peer_closed = True
        self.request_close(code)

    async def run_writer(self) -> None:
        """Send queued frames in order; close the socket when asked to."""
        while True:
            payload = await self._queue.get()
            if payload is None:
                break
            self._queued_bytes -= len(payload)
            if not await self._within_grace(self.websocket.send_text(payload)):
                break
        if self.close_code is not None and not self._peer_closed and not self.abandoned:
            await self._within_grace(self.websocket.close(self.close_code))
        self.closed.set()

    async def _within_grace(self, operation: Coroutine[Any, Any, None]) -> bool:
        """Run one send; False if the peer went away, or if a close was requested and the
        peer still did not take the frame within the close grace (then it is abandoned)."""
        task = asyncio.ensure_future(operation)
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            await asyncio.wait({task, closing}, return_when=asyncio.FIRST_COMPLETED)
            if not task.done():
                await asyncio.wait({task}, timeout=self._close_grace_s)
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                self.abandoned = True
                log.warning("send_abandoned", connection_id=self.id, code=self.close_code)
                return False
            task.result()
        except (WebSocketDisconnect, RuntimeError, OSError):
            # The peer went away mid-send; the reader sees the disconnect and cleans up.
            return False
        finally:
            closing.cancel()
            if not task.done():  # the writer itself was cancelled
                task.cancel()
        return True
