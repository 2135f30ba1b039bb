"""One accepted WebSocket connection: its identity, the threads it follows, and a bounded
send queue drained by a writer task, so a slow reader never blocks a run or another user.

An idle connection holds as little as it can (thousands stay open on one process): the queue
exists only while frames wait in it, the writer task only while it has frames to send or a
close to make, and the "room" a replay waits for only while a replay waits.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Iterator

from pydantic import BaseModel
from starlette.websockets import WebSocket, WebSocketDisconnect

from core.delivery.resume import ReplayMerge
from core.protocol import AgentEvent, CloseCode, EncodedEvent
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
        # Frames not sent yet, oldest first; None while there are none.
        self._queue: deque[str] | None = None
        self._queued_bytes = 0
        # Exists while a replay waits for the queue to be at most half full (see ``room``).
        self._room: asyncio.Event | None = None
        # Runs while there is something to send or a close to make (see ``_kick``).
        self._writer: asyncio.Task[None] | None = None
        # The writer waits for the socket to take a frame or the close (see ``_abandon``).
        self._sending = False
        self._abandon_timer: asyncio.TimerHandle | None = None
        # The task in the read loop (``reading``), stopped once the writer is done closing.
        self._reader: asyncio.Task[None] | None = None
        self._reader_stopped = False
        self._following: set[str] = set()
        # Threads being resumed: their live events wait in the merge until the replay is out.
        self._resuming: dict[str, ReplayMerge[EncodedEvent]] = {}
        self.close_code: int | None = None
        self._peer_closed = False
        # The writer is done for good: the close is sent, abandoned, or the peer is gone.
        self.closed = False

    def follow(self, thread_id: str) -> None:
        self._following.add(thread_id)

    def follows(self, thread_id: str) -> bool:
        return thread_id in self._following

    def begin_resume(self, thread_id: str, merge: ReplayMerge[EncodedEvent]) -> None:
        """Follow the thread, holding its live events in ``merge`` until ``end_resume``."""
        self._resuming[thread_id] = merge
        self.follow(thread_id)

    def end_resume(self, thread_id: str) -> None:
        self._resuming.pop(thread_id, None)

    @property
    def queued_bytes(self) -> int:
        return self._queued_bytes

    @property
    def writing(self) -> bool:
        """A writer task is running (only while there is something to send or a close)."""
        return self._writer is not None and not self._writer.done()

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
            merge.hold(event.seq, EncodedEvent(event.seq, event.epoch, payload), len(payload))
        return self.close_code is None

    def send_replayed(self, event: EncodedEvent) -> None:
        """Queue an event of a resume of this connection's own (its thread was checked), as
        it was serialised when logged or held."""
        self._enqueue(event.json)

    async def room(self) -> bool:
        """Wait until the send queue is at most half full; False once the connection is
        closing. A replay paces itself on this, so resuming a long history never makes a
        client that reads a slow consumer."""
        while self.close_code is None and self._queued_bytes > self._max_queue_bytes // 2:
            if self._room is None:
                self._room = asyncio.Event()
            await self._room.wait()
        return self.close_code is None

    def _wake_room(self) -> None:
        if self._room is not None:
            self._room.set()
            self._room = None

    def _enqueue(self, payload: str) -> None:
        if self.close_code is not None:
            return
        size = len(payload)
        if self._over_bound(size):
            self._close_slow_consumer()
            return
        if self._queue is None:
            self._queue = deque()
        self._queue.append(payload)
        self._queued_bytes += size
        self._kick()

    def _close_slow_consumer(self) -> None:
        """The client does not read; its events wait in the log for its resume. What is
        queued or held will never be read: free it now."""
        log.warning(
            "slow_consumer_closed",
            connection_id=self.id,
            queued=self._queued_bytes,
            held=self.held_bytes,
        )
        self._queue = None
        self._queued_bytes = 0
        for merge in self._resuming.values():
            merge.take_held(0)
        self.request_close(CloseCode.SLOW_CONSUMER)

    def request_close(self, code: int) -> None:
        """Close after the frames already queued; a peer that does not let the close through
        within the grace is given up on (``_abandon``)."""
        if self.close_code is not None:
            return
        self.close_code = int(code)  # a plain int in metrics labels and logs
        self._wake_room()  # a replay waiting for room stops at once
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on the event loop: ``wait_closed`` starts the writer
            return
        self._abandon_timer = loop.call_later(self._close_grace_s, self._abandon)
        self._kick()

    def peer_closed(self, code: int) -> None:
        """The client closed the socket: stop the writer without closing it again."""
        self._peer_closed = True
        self.request_close(code)

    async def wait_closed(self, timeout_s: float | None = None) -> None:
        """After ``request_close``: until the writer has sent what was queued and the close,
        or given up on the peer (or ``timeout_s`` has passed)."""
        self._kick()
        if self._writer is not None:
            await asyncio.wait({self._writer}, timeout=timeout_s)

    def _kick(self) -> None:
        """Start the writer unless it runs already (or is done for good)."""
        if self._writer is not None or self.closed:
            return
        with contextlib.suppress(RuntimeError):  # not on the event loop: a later call starts it
            self._writer = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        """Send queued frames in order until none is left, then end; once a close is asked
        for, close the socket after them. Cancelled by ``_abandon`` when the peer does not
        let them through within the grace."""
        try:
            while self._queue and not self._peer_closed:
                payload = self._queue.popleft()
                self._queued_bytes -= len(payload)
                if self._queued_bytes <= self._max_queue_bytes // 2:
                    self._wake_room()
                self._sending = True
                try:
                    await self.websocket.send_text(payload)
                except (WebSocketDisconnect, RuntimeError, OSError):
                    # The peer went away mid-send; nothing more can reach it.
                    self.peer_closed(CloseCode.NO_CLOSE_FRAME)
                finally:
                    self._sending = False
            self._queue = None
            if self.close_code is not None and not self._peer_closed:
                self._sending = True
                try:
                    await self.websocket.close(self.close_code)
                except (WebSocketDisconnect, RuntimeError, OSError):
                    pass  # the peer is gone already: nothing to close
                finally:
                    self._sending = False
        except asyncio.CancelledError:
            if not self.abandoned:
                raise
            if self._writer is not None:
                self._writer.uncancel()
        finally:
            if self.close_code is None:
                self._writer = None  # idle: the next frame starts another
            else:
                self._finish()

    def _finish(self) -> None:
        """The writer is done for good: free what is left and stop the read loop, which a
        peer that never sends again would otherwise hold open."""
        self.closed = True
        self._queue = None
        self._queued_bytes = 0
        if self._abandon_timer is not None:
            self._abandon_timer.cancel()
            self._abandon_timer = None
        if self._reader is not None and not self._reader_stopped:
            self._reader_stopped = True
            self._reader.cancel()

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """Around the current task's read loop: it ends (quietly) once the writer is done
        closing, whether or not the peer ever sends again."""
        task = asyncio.current_task()
        self._reader = task
        try:
            yield
        except asyncio.CancelledError:
            if not self._reader_stopped or task is None:
                raise
            task.uncancel()
        finally:
            self._reader = None

    def _abandon(self) -> None:
        """The close grace is over and the writer is still stuck in a send the peer does not
        take (it stopped reading): give up on the socket, so the connection's resources go.
        A writer that has not been stuck (a busy event loop has not run it yet) gets another
        grace."""
        self._abandon_timer = None
        if self.closed or self._writer is None or self._writer.done():
            return
        if not self._sending:
            loop = asyncio.get_running_loop()
            self._abandon_timer = loop.call_later(self._close_grace_s, self._abandon)
            return
        self.abandoned = True
        log.warning("send_abandoned", connection_id=self.id, code=self.close_code)
        self._writer.cancel()
