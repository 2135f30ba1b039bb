"""One accepted WebSocket connection: its identity, the threads it follows, and a bounded
send queue drained by a writer task, so a slow reader never blocks a run or another user."""

from __future__ import annotations

import asyncio
import contextlib

from pydantic import BaseModel
from starlette.websockets import WebSocket, WebSocketDisconnect

from core.delivery.resume import ReplayMerge
from core.protocol import AgentEvent, CloseCode
from core.telemetry.logging import get_logger
from core.telemetry.metrics import Metrics

log = get_logger(__name__)

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
        self.abandoned = False
        # Set while the queue is at most half full: a replay waits on it (see ``room``).
        self._room = asyncio.Event()
        self._room.set()
        self._writer: asyncio.Task[None] | None = None
        self._abandon_timer: asyncio.TimerHandle | None = None
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

    @property
    def held_bytes(self) -> int:
        """Live events held by this connection's resumes; they count against the same
        bound as the queue, so a resume cannot hold an unbounded backlog."""
        return sum(merge.held_size for merge in self._resuming.values())

    def _over_bound(self, size: int) -> bool:
        return self._queued_bytes + self.held_bytes + size > self._max_queue_bytes

    def send_frame(self, frame: BaseModel) -> None:
        self._enqueue(frame.model_dump_json())

    def send_event(self, event: AgentEvent, owner_user_id: str) -> bool:
        """Queue an agent event, unless it belongs to another user (the isolation guard);
        True when it was queued (or held for a resume), False when refused or closing."""
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
        if self.close_code is not None:
            return False  # closing: the event waits in the log for the client's resume
        payload = event.model_dump_json()
        merge = self._resuming.get(event.thread_id)
        if merge is None:
            self._enqueue(payload)
        elif self._over_bound(len(payload)):
            self._close_slow_consumer()
        else:
            merge.hold(event.seq, event, len(payload))
        return self.close_code is None

    def send_replayed(self, event: AgentEvent) -> None:
        """Queue an event of a resume of this connection's own (its thread was checked)."""
        self._enqueue(event.model_dump_json())

    async def room(self) -> bool:
        """Wait until the send queue is at most half full; False once the connection is
        closing. A replay paces itself on this, so resuming a long history never makes a
        client that reads a slow consumer."""
        await self._room.wait()
        return self.close_code is None

    def _enqueue(self, payload: str) -> None:
        if self.close_code is not None:
            return
        size = len(payload)
        if self._over_bound(size):
            self._close_slow_consumer()
            return
        self._queued_bytes += size
        if self._queued_bytes > self._max_queue_bytes // 2:
            self._room.clear()
        self._queue.put_nowait(payload)

    def _close_slow_consumer(self) -> None:
        """The client does not read; its events wait in the log for its resume. What is
        queued or held will never be read: free it now."""
        log.warning(
            "slow_consumer_closed",
            connection_id=self.id,
            queued=self._queued_bytes,
            held=self.held_bytes,
        )
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queued_bytes = 0
        for merge in self._resuming.values():
            merge.take_held(0)
        self.request_close(CloseCode.SLOW_CONSUMER)

    def request_close(self, code: int) -> None:
        if self.close_code is None:
            self.close_code = int(code)  # a plain int in metrics labels and logs
            self._room.set()  # a replay waiting for room stops at once
            self._queue.put_nowait(None)
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # not on the event loop: no writer can be running either
                return
            self._abandon_timer = loop.call_later(self._close_grace_s, self._abandon)

    def peer_closed(self, code: int) -> None:
        """The client closed the socket: stop the writer without closing it again."""
        self._peer_closed = True
        self.request_close(code)

    async def run_writer(self) -> None:
        """Send queued frames in order; close the socket when asked to. A close the peer does
        not let through within the grace is abandoned (see ``_abandon``)."""
        self._writer = asyncio.current_task()
        try:
            while True:
                payload = await self._queue.get()
                if payload is None:
                    break
                self._queued_bytes -= len(payload)
                if self._queued_bytes <= self._max_queue_bytes // 2:
                    self._room.set()
                try:
                    await self.websocket.send_text(payload)
                except (WebSocketDisconnect, RuntimeError, OSError):
                    # The peer went away mid-send; the reader sees the disconnect.
                    break
            if self.close_code is not None and not self._peer_closed:
                with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
                    await self.websocket.close(self.close_code)
        except asyncio.CancelledError:
            if not self.abandoned:
                raise
            if self._writer is not None:
                self._writer.uncancel()
        finally:
            if self._abandon_timer is not None:
                self._abandon_timer.cancel()
            self.closed.set()

    def _abandon(self) -> None:
        """The close grace is over and the writer is still stuck in a send the peer does not
        take (it stopped reading): give up on the socket, so the connection's resources go."""
        if self.closed.is_set() or self._writer is None or self._writer.done():
            return
        self.abandoned = True
        log.warning("send_abandoned", connection_id=self.id, code=self.close_code)
        self._writer.cancel()
