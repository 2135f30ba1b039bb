"""Helpers for the error-category tests: provoke a real failure, then check what came out."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import make_url

from core.db.errors import BY_CATEGORY, DatabaseError
from core.db.repository import Repository
from tests.fixtures.databases import ErrorLog, unique_name


async def expect(
    category: str, operation: str, action: Awaitable[object], errors: ErrorLog
) -> DatabaseError:
    """``action`` fails with exactly ``category`` in ``operation``, reported once to
    ``on_error``, with the driver's exception kept only as the cause."""
    with pytest.raises(DatabaseError) as info:
        await action
    error = info.value
    assert (error.category, error.operation) == (category, operation)
    assert type(error) is BY_CATEGORY[category]
    assert errors.calls == [(category, operation)]
    assert error.__cause__ is not None
    assert error.detail  # the driver's words, for the log
    return error


async def new_thread(repository: Repository) -> tuple[str, str]:
    user = unique_name("user")
    await repository.ensure_user(user)
    thread = await repository.create_thread(user, "t")
    return user, thread.id


async def append(repository: Repository, thread_id: str, event_id: str) -> tuple[int, str]:
    return await repository.append_event(
        thread_id=thread_id,
        run_id="run",
        event_id=event_id,
        type="agent_thinking",
        build=lambda seq, epoch: {"seq": seq, "epoch": epoch},
        created_at=datetime.now(UTC),
    )


def database_name(url: str) -> str:
    name = make_url(url).database
    assert name is not None
    return name
