"""``Repository``: every query the application makes, one transaction per method.

Isolation: methods that take a ``user_id`` only ever return that user's rows; another
user's thread looks exactly like a missing one.

Methods that write open their transaction with ``write=True``, which queues this process's
SQLite writers on one lock. Where they can, they write before they read: SQLite's deferred
transaction then waits for the write lock instead of failing to upgrade a read. The fenced
writes (``append_events``, ``finish_run``) read the run's lease first; on SQLite the queue
makes that safe within one process, the only way SQLite is run.

The hot paths (every event, every chat, every run's end) use Core statements built once,
on a plain connection (``Database.transaction``); the rest use the ORM session.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from core.db import statements as sql
from core.db.database import Database
from core.db.models import (
    Event,
    Message,
    Run,
    Thread,
    User,
    new_epoch,
    new_id,
    utc_now,
)
from core.db.records import (
    Admission,
    AppendOutcome,
    BuildPayload,
    EventRecord,
    NewEvent,
    RunNotFound,
    RunRecord,
    RunResult,
    RunTakenOver,
    ThreadNotFound,
    ThreadRecord,
    UsageSummary,
)
from core.db.usage import summarize_usage


class _AlreadyAdmitted(Exception):
    """Inside ``admit_chat``: the chat started a run before; undo this transaction."""


_NO_SYNC = {"synchronize_session": False}


class Repository:
    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._db = db
        self._clock = clock
        self._insert_run = (
            self._insert(Run.__table__)  # type: ignore[arg-type]
            .on_conflict_do_nothing(index_elements=[Run.user_id, Run.client_msg_id])
            .returning(Run.id)
        )

    def _insert(self, model: type[Any]) -> postgresql.Insert | sqlite.Insert:
        """``INSERT`` in the dialect that knows ``ON CONFLICT``."""
        if self._db.dialect == "postgresql":
            return postgresql.insert(model)
        return sqlite.insert(model)

    async def ensure_user(self, user_id: str) -> bool:
        """Create the user on first sight; ``False`` if the user exists and is disabled."""
        async with self._db.session("ensure_user", write=True) as session:
            await session.execute(
                self._insert(User)
                .values(id=user_id, created_at=self._clock(), disabled=False)
                .on_conflict_do_nothing(index_elements=[User.id])
            )
            disabled = await session.scalar(select(User.disabled).where(User.id == user_id))
        return not disabled

    async def set_user_disabled(self, user_id: str, disabled: bool) -> None:
        """Disable (or re-enable) a user; creates the user if it was never seen."""
        async with self._db.session("set_user_disabled", write=True) as session:
            await session.execute(
                self._insert(User)
                .values(id=user_id, created_at=self._clock(), disabled=disabled)
                .on_conflict_do_update(index_elements=[User.id], set_={"disabled": disabled})
            )

    async def create_thread(self, user_id: str, title: str) -> ThreadRecord:
        """A new, empty thread with a new epoch. The user must exist (``ensure_user``)."""
        now = self._clock()
        record = ThreadRecord(new_id(), user_id, new_epoch(), title, 0, now, now)
        async with self._db.session("create_thread", write=True) as session:
            session.add(Thread(**asdict(record)))
        return record

    async def get_thread(self, user_id: str, thread_id: str) -> ThreadRecord | None:
        """The thread, or ``None`` when it is missing or not this user's."""
        async with self._db.session("get_thread") as session:
            row = await session.scalar(
                select(Thread).where(Thread.id == thread_id, Thread.user_id == user_id)
            )
        return None if row is None else ThreadRecord.of(row)

    async def list_threads(self, user_id: str, *, limit: int = 200) -> list[ThreadRecord]:
        """The user's threads, most recently active (``updated_at``) first."""
        async with self._db.session("list_threads") as session:
            rows = await session.scalars(
                select(Thread)
                .where(Thread.user_id == user_id)
                .order_by(Thread.updated_at.desc(), Thread.created_at.desc(), Thread.id)
                .limit(limit)
            )
            return [ThreadRecord.of(row) for row in rows]

    async def find_run(self, user_id: str, client_msg_id: str) -> RunRecord | None:
        """The run this user's ``client_msg_id`` already started, if any."""
        async with self._db.session("find_run") as session:
            row = await session.scalar(
                select(Run).where(Run.user_id == user_id, Run.client_msg_id == client_msg_id)
            )
        return None if row is None else RunRecord.of(row)

    async def admit_run(
        self,
        *,
        run_id: str,
        thread_id: str,
        user_id: str,
        client_msg_id: str,
        text: str,
        is_canary: bool,
        replica_id: str | None = None,
        lease_expires_at: datetime | None = None,
    ) -> tuple[RunRecord, bool]:
        """``admit_chat`` on an existing thread: ``(the run, whether it is new)``."""
        admission = await self.admit_chat(
            run_id=run_id,
            thread_id=thread_id,
            title="",
            user_id=user_id,
            client_msg_id=client_msg_id,
            text=text,
            is_canary=is_canary,
            replica_id=replica_id,
            lease_expires_at=lease_expires_at,
        )
        return admission.run, admission.created

    async def admit_chat(
        self,
        *,
        run_id: str,
        thread_id: str | None,
        title: str,
        user_id: str,
        client_msg_id: str,
        text: str,
        is_canary: bool,
        replica_id: str | None = None,
        lease_expires_at: datetime | None = None,
    ) -> Admission:
        """Record a new run (``running``) and the user's message, on ``thread_id`` or on a
        new thread titled ``title`` (``thread_id=None``), in one transaction; with
        ``replica_id``, the run is leased to that replica until ``lease_expires_at``.

        Idempotent on ``(user_id, client_msg_id)``: a pair that already started a run
        answers with that run (``created`` false) and changes nothing, no new thread
        either. The UNIQUE constraint resolves it (``ON CONFLICT DO NOTHING``), so an
        expected retry is no error: nothing raised, nor reported to ``on_error``.
        Raises ``ThreadNotFound`` if ``thread_id`` is not the user's.
        """
        now = self._clock()
        run: dict[str, Any] = {
            "id": run_id,
            "thread_id": thread_id,
            "user_id": user_id,
            "client_msg_id": client_msg_id,
            "status": "running",
            "is_canary": is_canary,
            "started_at": now,
            "input_tokens": 0,
            "output_tokens": 0,
            "replica_id": replica_id,
            "lease_expires_at": lease_expires_at,
        }

        def admit(connection: Connection) -> str:
            if thread_id is None:
                thread = ThreadRecord(new_id(), user_id, new_epoch(), title, 0, now, now)
                connection.execute(sql.INSERT_THREAD, asdict(thread))
                run["thread_id"] = thread.id
                epoch = thread.epoch
            else:
                owned = connection.scalar(
                    sql.TOUCH_USERS_THREAD, {"b_thread": thread_id, "b_user": user_id, "b_at": now}
                )
                if owned is None:
                    raise ThreadNotFound(thread_id)
                epoch = owned
            if connection.scalar(self._insert_run, run) is None:
                raise _AlreadyAdmitted  # rolls back the new thread, if one was made
            message = self._message(
                run["thread_id"], user_id, run_id, role="user", text=text, now=now
            )
            connection.execute(sql.INSERT_MESSAGE, _columns(message))
            return str(epoch)

        try:
            epoch = await self._db.run_transaction("admit_run", admit, write=True)
        except _AlreadyAdmitted:
            return await self._admitted(user_id, client_msg_id)
        record = RunRecord(
            **run, completed_at=None, duration_ms=None, error_category=None, error_reason=None
        )
        return Admission(record, epoch, created=True)

    async def _admitted(self, user_id: str, client_msg_id: str) -> Admission:
        """The run a retried ``client_msg_id`` already started, and its thread's epoch."""
        async with self._db.session("find_run") as session:
            row = (
                await session.execute(
                    select(Run, Thread.epoch)
                    .join(Thread, Thread.id == Run.thread_id)
                    .where(Run.user_id == user_id, Run.client_msg_id == client_msg_id)
                )
            ).one()
        return Admission(RunRecord.of(row[0]), row[1], created=False)

    async def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        duration_ms: float,
        input_tokens: int,
        output_tokens: int,
        answer_text: str | None,
        error_category: str | None,
        error_reason: str | None,
        lease_holder: str | None = None,
    ) -> None:
        """Record how a run ended (and the assistant's answer, when there is one); with
        ``lease_holder``, only while the run's lease is still that holder's."""
        result = RunResult(
            status,
            duration_ms,
            input_tokens,
            output_tokens,
            answer_text,
            error_category,
            error_reason,
        )
        await self.record_result(run_id, result, lease_holder=lease_holder)

    async def record_result(
        self, run_id: str, result: RunResult, *, lease_holder: str | None = None
    ) -> None:
        """``finish_run`` with the run's end as one record."""
        now = self._clock()

        def record(connection: Connection) -> None:
            if lease_holder is not None:
                self._check_lease(connection, run_id, lease_holder)
            thread_id = self._record_result(connection, run_id, result, now)
            connection.execute(sql.TOUCH_THREAD, {"b_thread": thread_id, "b_at": now})

        await self._db.run_transaction("finish_run", record, write=True)

    def _record_result(
        self, connection: Connection, run_id: str, result: RunResult, now: datetime
    ) -> str:
        """Record the run's end (and the assistant's answer); its thread's id."""
        finished = {
            "b_run": run_id,
            "status": result.status,
            "completed_at": now,
            "duration_ms": result.duration_ms,
            "input_tokens": result.input_tokens,
            "output_tokens": result.output_tokens,
            "error_category": result.error_category,
            "error_reason": result.error_reason,
        }
        row = connection.execute(sql.FINISH_RUN, finished).one_or_none()
        if row is None:
            raise RunNotFound(run_id)
        thread_id, user_id = row
        if result.answer_text:
            answer = self._message(
                thread_id, user_id, run_id, role="assistant", text=result.answer_text, now=now
            )
            connection.execute(sql.INSERT_MESSAGE, _columns(answer))
        return str(thread_id)

    async def append_event(
        self,
        *,
        thread_id: str,
        run_id: str,
        event_id: str,
        type: str,  # the envelope's own field name
        build: BuildPayload,
        created_at: datetime,
        lease_holder: str | None = None,
    ) -> tuple[int, str]:
        """Store the thread's next event; returns its ``(seq, epoch)``. One event of
        ``append_events``: a refusal (``ThreadNotFound``, ``RunNotFound``,
        ``RunTakenOver``) is raised."""
        event = NewEvent(thread_id, run_id, event_id, type, build, created_at, lease_holder)
        (outcome,) = await self.append_events([event])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def append_events(self, events: Sequence[NewEvent]) -> list[AppendOutcome]:
        """Store events in one transaction; for each, its ``(seq, epoch)`` or the refusal
        that kept it out (nothing of a refused event is stored, and it takes no seq).

        Fencing: an event with ``lease_holder`` is stored only while its run's lease is
        still that holder's, else refused with ``RunTakenOver`` (a replica cut off long
        enough for another to end its run cannot add to it later). The runs' rows are locked
        first, in id order, then the threads', in id order: the order ``finish_run`` and
        every other batch take them in, so no two transactions wait on each other.

        The seq is taken in the database, in the same transaction as the insert:
        ``UPDATE threads SET last_seq = last_seq + k ... RETURNING last_seq, epoch`` locks
        the thread's row (PostgreSQL) or the database (SQLite) until commit, so concurrent
        appends to one thread, from any number of processes, get 1, 2, 3 ... with no gap
        and no repeat; a failed transaction rolls its increments back. Events of one thread
        get their seqs in the order given. ``build(seq, epoch)`` returns the envelope to
        store, so the stored payload carries its own seq and epoch.

        A database failure fails the whole transaction (``DatabaseError``), so the caller
        decides what to retry.
        """

        def store(connection: Connection) -> list[AppendOutcome]:
            outcomes: list[AppendOutcome | None] = [None] * len(events)
            refused = self._fence(connection, events)
            by_thread: dict[str, list[int]] = {}
            for index, event in enumerate(events):
                if index in refused:
                    outcomes[index] = refused[index]
                else:
                    by_thread.setdefault(event.thread_id, []).append(index)
            rows: list[dict[str, Any]] = []
            for thread_id in sorted(by_thread):
                indexes = by_thread[thread_id]
                bumped = connection.execute(
                    sql.BUMP_SEQ,
                    {
                        "thread": thread_id,
                        "count": len(indexes),
                        "at": max(events[i].created_at for i in indexes),
                    },
                )
                found = bumped.one_or_none()
                if found is None:
                    for index in indexes:
                        outcomes[index] = ThreadNotFound(thread_id)
                    continue
                last_seq, epoch = found
                for seq, index in enumerate(indexes, start=last_seq - len(indexes) + 1):
                    event = events[index]
                    outcomes[index] = (seq, epoch)
                    rows.append(
                        {
                            "thread_id": thread_id,
                            "seq": seq,
                            "epoch": epoch,
                            "run_id": event.run_id,
                            "event_id": event.event_id,
                            "type": event.type,
                            "payload": event.build(seq, epoch),
                            "created_at": event.created_at,
                        }
                    )
            if rows:
                connection.execute(sql.INSERT_EVENTS, rows)
            for index, event in enumerate(events):
                # A stored run's record; the fence has checked it exists and is ours.
                if event.result is not None and not isinstance(outcomes[index], Exception):
                    self._record_result(connection, event.run_id, event.result, event.created_at)
            assert all(outcome is not None for outcome in outcomes)  # every event was answered
            return cast(list[AppendOutcome], outcomes)

        return await self._db.run_transaction("append_event", store, write=True)

    @staticmethod
    def _fence(
        connection: Connection, events: Sequence[NewEvent]
    ) -> dict[int, RunNotFound | RunTakenOver]:
        """The events (by index) whose run is missing or leased to another holder; the
        runs' rows stay locked until commit, so a concurrent claim waits for this batch."""
        fenced = sorted({event.run_id for event in events if event.lease_holder is not None})
        if not fenced:
            return {}
        holders = _lock_runs(connection, fenced)
        refused: dict[int, RunNotFound | RunTakenOver] = {}
        for index, event in enumerate(events):
            if event.lease_holder is not None:
                refusal = _lease_refusal(event.run_id, event.lease_holder, holders)
                if refusal is not None:
                    refused[index] = refusal
        return refused

    @staticmethod
    def _check_lease(connection: Connection, run_id: str, holder: str) -> None:
        """Raise ``RunTakenOver`` unless ``holder`` holds the run's lease. The row is locked
        (PostgreSQL; SQLite's write lock covers it) so a concurrent claim waits for us."""
        refusal = _lease_refusal(run_id, holder, _lock_runs(connection, [run_id]))
        if refusal is not None:
            raise refusal

    async def list_events(
        self, user_id: str, thread_id: str, after_seq: int, limit: int
    ) -> list[EventRecord] | None:
        """Up to ``limit`` events with ``seq > after_seq``, in order; ``None`` when the
        thread is missing or not this user's."""
        async with self._db.session("list_events") as session:
            owned = await session.scalar(
                select(Thread.id).where(Thread.id == thread_id, Thread.user_id == user_id)
            )
            if owned is None:
                return None
            rows = await session.scalars(
                select(Event)
                .where(Event.thread_id == thread_id, Event.seq > after_seq)
                .order_by(Event.seq)
                .limit(limit)
            )
            return [EventRecord.of(row) for row in rows]

    async def list_event_payloads(
        self, user_id: str, thread_id: str, after_seq: int, limit: int
    ) -> list[str] | None:
        """``list_events``' payloads as the JSON text stored, for a resume: it checks them
        all in one pass, where an ORM object and a parse per row cost most of its time."""
        async with self._db.transaction("list_events") as connection:
            if (
                await connection.scalar(
                    sql.OWNED_THREAD, {"b_thread": thread_id, "b_user": user_id}
                )
                is None
            ):
                return None
            rows = await connection.scalars(
                sql.EVENT_PAYLOADS, {"b_thread": thread_id, "b_after": after_seq, "b_limit": limit}
            )
            return list(rows)

    async def usage_summary(self, user_id: str) -> UsageSummary:
        """This user's runs and tokens, canary runs excluded (see ``UsageSummary``)."""
        async with self._db.session("usage_summary") as session:
            return await summarize_usage(session, user_id)

    @staticmethod
    def _message(
        thread_id: str, user_id: str, run_id: str, *, role: str, text: str, now: datetime
    ) -> Message:
        return Message(
            id=new_id(),
            thread_id=thread_id,
            user_id=user_id,
            run_id=run_id,
            role=role,
            text=text,
            created_at=now,
        )


def _columns(row: Any) -> dict[str, Any]:
    """An ORM object's column values, for a Core ``INSERT``."""
    return {column.key: getattr(row, column.key) for column in row.__table__.columns}


def _lock_runs(connection: Connection, run_ids: list[str]) -> dict[str, str | None]:
    """The runs' lease holders, their rows locked in id order until commit."""
    result = connection.execute(sql.LOCK_RUNS, {"runs": run_ids})
    return dict(result.tuples().all())


def _lease_refusal(
    run_id: str, holder: str, holders: dict[str, str | None]
) -> RunNotFound | RunTakenOver | None:
    """Why ``holder`` may not write to the run, or ``None`` while the lease is its own."""
    if run_id not in holders:
        return RunNotFound(run_id)
    current = holders[run_id]
    if current is not None and current != holder:
        return RunTakenOver(run_id, current)
    return None
