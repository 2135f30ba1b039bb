"""What the server does with each valid client frame on an accepted connection."""

from __future__ import annotations

import time
import uuid

from opentelemetry.trace import SpanContext

from core.agent.context import UserExecutionContext
from core.db.errors import DatabaseError
from core.db.records import ThreadNotFound
from core.db.repository import ThreadRecord
from core.protocol import (
    AckFrame,
    CancelFrame,
    ChatAccepted,
    ChatFrame,
    ClientFrame,
    FrameError,
    PongFrame,
    ResumeFrame,
)
from core.services import Services
from core.telemetry.logging import get_logger
from core.ws.connection import Connection
from core.ws.heartbeat import Heartbeat
from core.ws.resume import Resumes

log = get_logger(__name__)


class FrameHandlers:
    def __init__(
        self,
        services: Services,
        connection: Connection,
        heartbeat: Heartbeat,
        *,
        request_id: str,
        connection_span: SpanContext | None,
    ) -> None:
        self._s = services
        self._conn = connection
        self._heartbeat = heartbeat
        self._request_id = request_id
        self._connection_span = connection_span
        self.resumes = Resumes(services, connection)

    async def handle(self, frame: ClientFrame) -> None:
        try:
            match frame:
                case ChatFrame():
                    await self._chat(frame)
                case AckFrame():
                    await self._ack(frame)
                case ResumeFrame():
                    await self._resume(frame)
                case PongFrame():
                    self._heartbeat.pong(frame.ts)
                case CancelFrame():
                    if not self._s.executor.cancel(self._conn.user_id, frame.run_id):
                        raise FrameError(
                            "not_found", f"no run {frame.run_id!r} of yours is running"
                        )
        except DatabaseError as exc:
            # Answered with the frame's ref (or resumed thread) by the reader's error path.
            raise FrameError(
                "unavailable", f"the database is unavailable ({exc.category}); retry"
            ) from exc

    async def _chat(self, frame: ChatFrame) -> None:
        user_id = self._conn.user_id
        repository = self._s.repository
        if not frame.text.strip():
            raise FrameError("invalid_field", "field 'text': must not be empty", frame.id)
        received_ns = time.time_ns()
        try:
            admission = await repository.admit_chat(
                run_id=uuid.uuid4().hex,
                thread_id=frame.thread_id,
                title=frame.text.strip()[:80],
                user_id=user_id,
                client_msg_id=frame.id,
                text=frame.text,
                is_canary=self._conn.canary,
                replica_id=self._s.replica.id,
                lease_expires_at=self._s.replica.leases.expiry(),
                own_span=False,  # the run's trace shows it
            )
        except ThreadNotFound as exc:
            raise FrameError("not_found", f"no thread {frame.thread_id!r}", frame.id) from exc
        run = admission.run
        if not admission.created and frame.thread_id not in (None, run.thread_id):
            # The same id twice starts one run, on one thread.
            raise FrameError("conflict", "this id was already used on another thread", frame.id)
        self._accept(frame.id, run.thread_id, run.id, admission.epoch)
        if admission.created:
            ctx = UserExecutionContext(
                user_id=user_id,
                thread_id=run.thread_id,
                run_id=run.id,
                request_id=self._request_id,
                client_msg_id=frame.id,
                text=frame.text,
                canary=self._conn.canary,
                connection_span=self._connection_span,
                lease_holder=self._s.replica.id,
                received_ns=received_ns,
                admitted_ns=time.time_ns(),
            )
            self._s.executor.start(ctx, self._s.runner.run(ctx))

    def _accept(self, msg_id: str, thread_id: str, run_id: str, epoch: str | None) -> None:
        self._conn.follow(thread_id)
        self._conn.send_frame(
            ChatAccepted(id=msg_id, thread_id=thread_id, run_id=run_id, epoch=epoch)
        )

    async def _owned_thread(self, thread_id: str) -> ThreadRecord:
        thread = await self._s.repository.get_thread(self._conn.user_id, thread_id)
        if thread is None:
            raise FrameError("not_found", f"no thread {thread_id!r}")
        return thread

    async def _ack(self, frame: AckFrame) -> None:
        """Checked before anything changes: another user's thread is not_found, a seq the
        thread never reached is invalid_field."""
        deliveries = self._s.deliveries
        last_seq = deliveries.last_pending_seq(frame.thread_id)
        if not self._conn.follows(frame.thread_id) or frame.seq > last_seq:
            thread = await self._owned_thread(frame.thread_id)
            last_seq = max(last_seq, thread.last_seq)
        if frame.seq > last_seq:
            raise FrameError("invalid_field", f"seq {frame.seq} was never sent on this thread")
        deliveries.acked(frame.thread_id, frame.seq)
        # The replica that emitted the events may be another one: it retires and counts them.
        await self._s.replica.event_log.acked(frame.thread_id, frame.seq)

    async def _resume(self, frame: ResumeFrame) -> None:
        thread = await self._owned_thread(frame.thread_id)
        # A seq of another epoch says nothing about this log: that resume is answered
        # recovered:false (the client backfills over REST), never refused.
        if frame.epoch == thread.epoch and frame.last_seq > thread.last_seq:
            raise FrameError("invalid_field", f"last_seq {frame.last_seq} is beyond the thread")
        self.resumes.start(frame, thread)
