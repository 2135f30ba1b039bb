"""The statements of the hot paths (every event, chat, handshake and run's end), built once
with bind parameters: built per call, SQLAlchemy's coercion of each value cost more than the
SQL itself. Executed on a Core connection (``Database.transaction``, ``run_transaction``)
by the repository."""

from __future__ import annotations

from sqlalchemy import Text, bindparam, cast, insert, select, update

from core.db.models import Event, Message, Run, Thread, User

BUMP_SEQ = (
    update(Thread)
    .where(Thread.id == bindparam("thread"))
    .values(last_seq=Thread.last_seq + bindparam("count"), updated_at=bindparam("at"))
    .returning(Thread.last_seq, Thread.epoch)
)
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
