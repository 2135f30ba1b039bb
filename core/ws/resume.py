"""Resuming threads on one connection, in the background: the connection keeps reading
(acks, pongs, chats) while a long replay goes out as fast as the client takes it.

The handler checks the frame (the thread is the user's, ``last_seq`` is not past its end)
and hands it here. Resumes of one connection run one after another, in the order asked.
Each follows its thread first, holding live events in a ``ReplayMerge``, reads the replay
(the event log first, the database when the log cannot vouch for the range), sends it paced
by the send queue (``Connection.room``), then the live events held meanwhile, and answers
``resumed``. A failure is answered with an ``error`` frame, never ends the connection.

Events travel as ``EncodedEvent``: the JSON a log holds (or a held live event was
serialised to) is the frame sent, never parsed and serialised again on the way.
"""

from __future__ import annotations

import asyncio

from core.db.errors import DatabaseError
from core.db.repository import ThreadRecord
from core.delivery.resume import ReplayMerge
from core.eventlog.replay import replay_events
from core.protocol import EncodedEvent, ErrorFrame, Resumed, ResumeFrame
from core.services import Services
from core.telemetry.logging import get_logger
from core.ws.connection import Connection

log = get_logger(__name__)

RESUME_REPLAY_LIMIT = 10_000


class Resumes:
    def __init__(self, services: Services, connection: Connection) -> None:
        self._s = services
        self._conn = connection
        self._last: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, frame: ResumeFrame, thread: ThreadRecord) -> None:
        """Queue a checked resume behind the connection's earlier ones."""
        task = asyncio.create_task(self._after(self._last, frame, thread))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._last = task

    def close(self) -> None:
        """The connection ended: its resumes end too."""
        for task in list(self._tasks):
            task.cancel()

    async def _after(
        self, previous: asyncio.Task[None] | None, frame: ResumeFrame, thread: ThreadRecord
    ) -> None:
        if previous is not None:
            # It never raises: its failures are answered with an error frame and counted.
            await asyncio.wait({previous})
        if self._conn.close_code is not None:
            return
        try:
            await self._resume(frame, thread)
        except DatabaseError as exc:
            self._refuse(frame, f"the database is unavailable ({exc.category}); retry")
        except Exception:  # noqa: BLE001 - one failed resume must not end the connection
            self._s.metrics.internal_errors.labels("resume").inc()
            log.exception("resume_failed", connection_id=self._conn.id, thread_id=thread.id)
            self._refuse(frame, "the server failed to resume this thread")

    def _refuse(self, frame: ResumeFrame, message: str) -> None:
        self._s.metrics.frames_rejected.labels("unavailable").inc()
        self._conn.send_frame(ErrorFrame.answering(frame, "unavailable", message))

    async def _resume(self, frame: ResumeFrame, thread: ThreadRecord) -> None:
        # Follow first, holding live events in the merge, then read the replay: an event
        # emitted meanwhile is in one or the other (or both), never lost, never sent twice.
        # The replay goes out as fast as the client reads (``room``); live events keep
        # being held until it is all queued, then follow it.
        conn = self._conn
        merge = ReplayMerge[EncodedEvent](frame.last_seq, epoch_matches=frame.epoch == thread.epoch)
        conn.begin_resume(frame.thread_id, merge)
        last_sent, sent = merge.after_seq, 0
        try:
            replayed: list[tuple[int, EncodedEvent]] = []
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
    ) -> tuple[list[tuple[int, EncodedEvent]], bool]:
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
