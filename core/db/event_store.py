"""``EventStore``: a thread's events in the database, stored in seq order and read back.

The base of ``Repository`` (core/db/repository.py), whose module docstring holds for these
methods too: isolation by user, the writer queue, the hot paths' Core statements.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from opentelemetry.trace import Span
from sqlalchemy import Connection, select

from core.db import statements as sql
from core.db.database import Database
from core.db.models import Event, Thread
from core.db.records import (
    AppendOutcome,
    BuildPayload,
    EventRecord,
    NewEvent,
    ThreadNotFound,
)
from core.db.run_writes import fence, record_end


class EventStore:
    def __init__(self, db: Database) -> None:
        self._db = db

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

    async def append_events(
        self, events: Sequence[NewEvent], *, span: Span | None = None
    ) -> list[AppendOutcome]:
        """Store events in one transaction; for each, its ``(seq, epoch)`` or the refusal
        that kept it out (nothing of a refused event is stored, and it takes no seq). The
        transaction is traced in ``span`` when given (``Database.run_transaction``).

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
            refused = fence(connection, events)
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
                    record_end(connection, event.run_id, event.result, event.created_at)
            assert all(outcome is not None for outcome in outcomes)  # every event was answered
            return cast(list[AppendOutcome], outcomes)

        return await self._db.run_transaction("append_event", store, write=True, span=span)

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
