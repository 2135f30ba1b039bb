"""The statements of the hot paths (every event, chat, handshake and run's end), built once
with bind parameters: built per call, SQLAlchemy's coercion of each value cost more than the
SQL itself. Executed on a Core connection (``Database.transaction``, ``run_transaction``)
by the repository."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Text, TextClause, bindparam, cast, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.selectable import TextualSelect

from core.db.models import Base, Event, Message, Run, Thread, User


def insert_or_skip(
    model: type[Base],
    conflict: Sequence[InstrumentedAttribute[Any]],
    *,
    returning: InstrumentedAttribute[Any] | None = None,
) -> dict[str, TextClause | TextualSelect]:
    """``INSERT`` of every column of ``model``, ``ON CONFLICT (conflict) DO NOTHING``, by
    dialect name, as text compiled once. The dialects' inserts (the only ones with ``ON
    CONFLICT``) are uncacheable in SQLAlchemy 2.0 (``inherit_cache = False``): compiled
    again on every execution. Text with typed bind parameters has a cache key, and keeps
    each column's bind processing (SQLite's timestamps and booleans)."""
    statements: dict[str, TextClause | TextualSelect] = {}
    for dialect in (sqlite, postgresql):
        statement = dialect.insert(model).on_conflict_do_nothing(index_elements=conflict)
        if returning is not None:
            statement = statement.returning(returning)
        compiled = statement.compile(dialect=dialect.dialect(paramstyle="named"))
        clause = text(str(compiled)).bindparams(
            *(bindparam(column.key, type_=column.type) for column in model.__table__.columns)
        )
        statements[dialect.dialect.name] = (
            clause if returning is None else clause.columns(returning)
        )
    return statements


BUMP_SEQ = (
    update(Thread)
    .where(Thread.id == bindparam("thread"))
    .values(last_seq=Thread.last_seq + bindparam("count"), updated_at=bindparam("at"))
    .returning(Thread.last_seq, Thread.epoch)
)
# One run's row (a batch of one run's events, a lease check): an expanding IN is rendered per call.
LOCK_RUN = select(Run.id, Run.replica_id).where(Run.id == bindparam("run")).with_for_update()
LOCK_RUNS = (
    select(Run.id, Run.replica_id)
    .where(Run.id.in_(bindparam("runs", expanding=True)))
    .order_by(Run.id)
    .with_for_update()
)
INSERT_EVENTS = insert(Event.__table__)  # type: ignore[arg-type]
INSERT_THREAD = insert(Thread.__table__)  # type: ignore[arg-type]
INSERT_MESSAGE = insert(Message.__table__)  # type: ignore[arg-type]
TOUCH_USERS_THREAD = (
    update(Thread.__table__)  # type: ignore[arg-type]
    .where(Thread.id == bindparam("b_thread"), Thread.user_id == bindparam("b_user"))
    .values(updated_at=bindparam("b_at"))
    .returning(Thread.epoch)
)
TOUCH_THREAD = (
    update(Thread.__table__)  # type: ignore[arg-type]
    .where(Thread.id == bindparam("b_thread"))
    .values(updated_at=bindparam("b_at"))
)
FINISH_RUN = (
    update(Run.__table__)  # type: ignore[arg-type]
    .where(Run.id == bindparam("b_run"))
    .returning(Run.thread_id, Run.user_id)
)
USER_DISABLED = select(User.disabled).where(User.id == bindparam("b_user"))
OWNED_THREAD = select(Thread.id).where(
    Thread.id == bindparam("b_thread"), Thread.user_id == bindparam("b_user")
)
# A resume's events as the JSON text stored (no parse per row: the caller checks them all).
EVENT_PAYLOADS = (
    select(cast(Event.payload, Text))
    .where(Event.thread_id == bindparam("b_thread"), Event.seq > bindparam("b_after"))
    .order_by(Event.seq)
    .limit(bindparam("b_limit"))
)
# The idempotent inserts of a chat's run and a handshake's user, by dialect name.
INSERT_RUN = insert_or_skip(Run, [Run.user_id, Run.client_msg_id], returning=Run.id)
INSERT_USER = insert_or_skip(User, [User.id])
