"""``Repository``: every query the application makes, one transaction per method. Users,
threads, runs (admission, their end) and usage are here; a thread's events come from its base
class, ``EventStore`` (core/db/event_store.py), and the writes both make to a run inside a
transaction (the lease fence, the run's end) from core/db/run_writes.py.

Isolation: methods that take a ``user_id`` only ever return that user's rows; another
user's thread looks exactly like a missing one.

Methods that write open their transaction with ``write=True``, which queues this process's
SQLite writers on one lock. Where they can, they write before they read: SQLite's deferred
transaction then waits for the write lock instead of failing to upgrade a read. The fenced
writes (``append_events``, ``finish_run``) read the run's lease first; on SQLite the queue
makes that safe within one process, the only way SQLite is run.

The hot paths (every event, chat, handshake and run's end) run Core statements built once
(core/db/statements.py) on a plain connection, one ``Database.run_transaction`` each; the
rest use the ORM session.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from core.db import statements as sql
from core.db.database import Database
from core.db.event_store import EventStore
from core.db.models import Run, Thread, User, new_epoch, new_id, utc_now
from core.db.records import (
    Admission,
    RunRecord,
    RunResult,
    ThreadNotFound,
    ThreadRecord,
    UsageSummary,
)
from core.db.run_writes import check_lease, message_row, record_end
from core.db.usage import summarize_usage


class _AlreadyAdmitted(Exception):
    """Inside ``admit_chat``: the chat started a run before; undo this transaction."""


class Repository(EventStore):
    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utc_now) -> None:
        super().__init__(db)
        self._clock = clock
        self._insert_run = sql.INSERT_RUN[db.dialect]
        self._insert_user = sql.INSERT_USER[db.dialect]

    def _insert(self, model: type[Any]) -> postgresql.Insert | sqlite.Insert:
        """``INSERT`` in the dialect that knows ``ON CONFLICT``."""
        if self._db.dialect == "postgresql":
            return postgresql.insert(model)
        return sqlite.insert(model)

    async def ensure_user(self, user_id: str) -> bool:
        """Create the user on first sight; ``False`` if the user exists and is disabled.
        Every handshake asks: a hot path (``Database.run_transaction``), so a reconnecting
        crowd does not queue on the writer."""
        row = {"id": user_id, "created_at": self._clock(), "disabled": False}

        def ensure(connection: Connection) -> bool:
            connection.execute(self._insert_user, row)
            return not connection.scalar(sql.USER_DISABLED, {"b_user": user_id})

        return await self._db.run_transaction("ensure_user", ensure, write=True)

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
        own_span: bool = True,
    ) -> Admission:
        """Record a new run (``running``) and the user's message, on ``thread_id`` or on a
        new thread titled ``title`` (``thread_id=None``), in one transaction; with
        ``replica_id``, the run is leased to that replica until ``lease_expires_at``.

        Idempotent on ``(user_id, client_msg_id)``: a pair that already started a run
        answers with that run (``created`` false) and changes nothing, no new thread
        either. The UNIQUE constraint resolves it (``ON CONFLICT DO NOTHING``), so an
        expected retry is no error: nothing raised, nor reported to ``on_error``.
        Raises ``ThreadNotFound`` if ``thread_id`` is not the user's. ``own_span=False``:
        the transaction has a span only if it fails, the caller traces it (the run's trace
        starts with its chat's admission).
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
            "completed_at": None,
            "duration_ms": None,
            "input_tokens": 0,
            "output_tokens": 0,
            "error_category": None,
            "error_reason": None,
            "replica_id": replica_id,
            "lease_expires_at": lease_expires_at,
        }

        def admit(connection: Connection) -> str:
            if thread_id is None:
                # Its columns as is: dataclasses.asdict deep-copies every value.
                thread = ThreadRecord(new_id(), user_id, new_epoch(), title, 0, now, now)
                connection.execute(sql.INSERT_THREAD, vars(thread))
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
            message = message_row(
                run["thread_id"], user_id, run_id, role="user", text=text, now=now
            )
            connection.execute(sql.INSERT_MESSAGE, message)
            return str(epoch)

        try:
            epoch = await self._db.run_transaction(
                "admit_run", admit, write=True, own_span=own_span
            )
        except _AlreadyAdmitted:
            return await self._admitted(user_id, client_msg_id)
        return Admission(RunRecord(**run), epoch, created=True)

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
                check_lease(connection, run_id, lease_holder)
            thread_id = record_end(connection, run_id, result, now)
            connection.execute(sql.TOUCH_THREAD, {"b_thread": thread_id, "b_at": now})

        await self._db.run_transaction("finish_run", record, write=True)

    async def usage_summary(self, user_id: str) -> UsageSummary:
        """This user's runs and tokens, canary runs excluded (see ``UsageSummary``)."""
        async with self._db.session("usage_summary") as session:
            return await summarize_usage(session, user_id)
