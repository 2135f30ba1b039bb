"""A run's writes inside a hot-path transaction, on its Core connection: the lease fence in
front of them, the record of the run's end and the rows of its messages.

Shared by ``Repository`` (admission, ``finish_run``) and ``EventStore`` (``append_events``,
whose last event of a run may carry the run's end), so each is written once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from core.db import statements as sql
from core.db.models import new_id
from core.db.records import NewEvent, RunNotFound, RunResult, RunTakenOver


def record_end(connection: Connection, run_id: str, result: RunResult, now: datetime) -> str:
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
        answer = message_row(
            thread_id, user_id, run_id, role="assistant", text=result.answer_text, now=now
        )
        connection.execute(sql.INSERT_MESSAGE, answer)
    return str(thread_id)


def message_row(
    thread_id: str, user_id: str, run_id: str, *, role: str, text: str, now: datetime
) -> dict[str, Any]:
    """A new message's column values, for ``statements.INSERT_MESSAGE`` (every column
    given: an ORM instance to fill them in cost more than the insert's own statement)."""
    return {
        "id": new_id(),
        "thread_id": thread_id,
        "user_id": user_id,
        "run_id": run_id,
        "role": role,
        "text": text,
        "created_at": now,
    }


def fence(
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


def check_lease(connection: Connection, run_id: str, holder: str) -> None:
    """Raise ``RunTakenOver`` unless ``holder`` holds the run's lease. The row is locked
    (PostgreSQL; SQLite's write lock covers it) so a concurrent claim waits for us."""
    refusal = _lease_refusal(run_id, holder, _lock_runs(connection, [run_id]))
    if refusal is not None:
        raise refusal


def _lock_runs(connection: Connection, run_ids: list[str]) -> dict[str, str | None]:
    """The runs' lease holders, their rows locked in id order until commit."""
    if len(run_ids) == 1:
        result = connection.execute(sql.LOCK_RUN, {"run": run_ids[0]})
    else:
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
