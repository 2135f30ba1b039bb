"""What the server does with each valid client frame on an accepted connection."""

from __future__ import annotations

import uuid

from opentelemetry.trace import SpanContext

from core.agent.context import UserExecutionContext
from core.db.errors import DatabaseError
from core.db.repository import ThreadRecord
from core.delivery.resume import ReplayMerge
from core.eventlog.replay import replay_events
from core.protocol import (
    AckFrame,
    AgentEvent,
    CancelFrame,
    ChatAccepted,
    ChatFrame,
    ClientFrame,
    FrameError,
    PongFrame,
    Resumed,
    ResumeFrame,
)
from core.services import Services
from core.telemetry.logging import get_logger
from core.ws.connection import Connection
from core.ws.heartbeat import Heartbeat

log = get_logger(__name__)

RESUME_REPLAY_LIMIT = 10_000


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
            ref = frame.id if isinstance(frame, ChatFrame) else None
            raise FrameError(
                "unavailable", f"the database is unavailable ({exc.category}); retry", ref
            ) from exc

    async def _chat(self, frame: ChatFrame) -> None:
        user_id = self._conn.user_id
        repository = self._s.repository
        if not frame.text.strip():
            raise FrameError("invalid_field", "field 'text': must not be empty", frame.id)
        existing = await repository.find_run(user_id, frame.id)
        if existing is not None:
            # The same id twice starts one run: answer with the run it already started.
            if frame.thread_id is not None and frame.thread_id != existing.thread_id:
                raise FrameError("conflict", "this id was already used on another thread", frame.id)
            same_thread = await repository.get_thread(user_id, existing.thread_id)
            epoch = same_thread.epoch if same_thread is not None else None
            self._accept(frame.id, existing.thread_id, existing.id, epoch)
            return
        if frame.thread_id is None:
            thread = await repository.create_thread(user_id, frame.text.strip()[:80])
        else:
            found = await repository.get_thread(user_id, frame.thread_id)
            if found is None:
                raise FrameError("not_found", f"no thread {frame.thread_id!r}", frame.id)
            thread = found
        run, created = await repository.admit_run(
            run_id=uuid.uuid4().hex,
            thread_id=thread.id,
            user_id=user_id,
            client_msg_id=frame.id,
            text=frame.text,
            is_canary=self._conn.canary,
            replica_id=self._s.replica.id,
            lease_expires_at=self._s.replica.leases.expiry(),
        )
        self._accept(frame.id, run.thread_id, run.id, thread.epoch)
        if created:
            ctx = UserExecutionContext(
                user_id=user_id,
                thread_id=run.thread_id,
                run_id=run.id,
                request_id=self._request_id,
                client_msg_id=frame.id,
                text=frame.text,
                canary=self._conn.canary,
                connection_span=self._connection_span,
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
        if frame.last_seq > thread.last_seq:
            raise FrameError("invalid_field", f"last_seq {frame.last_seq} is beyond the thread")
        # Follow first, holding live events in the merge, then read the replay: an event
        # emitted meanwhile is in one or the other (or both), never lost, never sent twice.
        # The replay goes out as fast as the client reads (``room``); live events keep
        # being held until it is all queued, then follow it.
        conn = self._conn
        merge = ReplayMerge[AgentEvent](frame.last_seq, epoch_matches=frame.epoch == thread.epoch)
        conn.begin_resume(frame.thread_id, merge)
        last_sent, sent = frame.last_seq, 0
        try:
            replayed: list[tuple[int, AgentEvent]] = []
            complete = False
            if merge.epoch_matches:
                replayed, complete = await self._replay(thread, frame.last_seq)
            merged = merge.finish(replayed, complete=complete)
            batch = merged.items
            while batch:
                for event in batch:
                    if not await conn.room():
                        return  # closing: the client resumes again on its next connection
                    conn.send_replayed(event)
                    last_sent, sent = event.seq, sent + 1
                batch = merge.take_held(last_sent)
        finally:
            # Nothing awaits between the last look at the merge and the end of the resume,
            # so no live event slips in between (or is lost on an error).
            for event in merge.take_held(last_sent):
                conn.send_replayed(event)
            conn.end_resume(frame.thread_id)
        self._s.metrics.resumes.labels(str(merged.recovered).lower()).inc()
        conn.send_frame(
            Resumed(
                thread_id=frame.thread_id,
                recovered=merged.recovered,
                replayed=sent,
                epoch=thread.epoch,
            )
        )

    async def _replay(
        self, thread: ThreadRecord, after_seq: int
    ) -> tuple[list[tuple[int, AgentEvent]], bool]:
        """The events after ``after_seq`` and whether that is all of them: from the event
        log, or from the database when the log cannot vouch for the whole range."""
        replay = await replay_events(
            self._s.replica.event_log,
            self._s.repository,
            user_id=self._conn.user_id,
            thread=thread,
            after_seq=after_seq,
            limit=RESUME_REPLAY_LIMIT,
        )
        self._s.replica.metrics.resume_sources.labels(replay.source).inc()
        return [(event.seq, event) for event in replay.events], replay.complete
