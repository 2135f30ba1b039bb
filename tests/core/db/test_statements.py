"""The idempotent inserts (``insert_or_skip``): the SQL of the dialects' own ``ON CONFLICT DO
NOTHING`` inserts, but compiled once, where those are compiled again on every execution."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
from sqlalchemy.engine.interfaces import CacheStats, Dialect

from core.db import statements as sql
from core.db.database import Database
from core.db.models import Message, Run, User, utc_now
from core.db.repository import Repository
from core.db.run_writes import message_row
from tests.fixtures.databases import unique_name

# The drivers' dialects: what the statements are compiled for when executed.
DRIVERS: dict[str, Dialect] = {
    "sqlite": SQLiteDialect_aiosqlite(),
    "postgresql": PGDialect_asyncpg(),
}


def dialect_inserts(name: str) -> dict[str, Any]:
    """The statements as the dialect's own (uncacheable) inserts would write them."""
    insert = sqlite.insert if name == "sqlite" else postgresql.insert
    return {
        "run": insert(Run)
        .on_conflict_do_nothing(index_elements=[Run.user_id, Run.client_msg_id])
        .returning(Run.id),
        "user": insert(User).on_conflict_do_nothing(index_elements=[User.id]),
    }


@pytest.mark.parametrize("name", sorted(DRIVERS))
def test_the_inserts_send_the_dialects_sql_and_have_a_cache_key(name: str) -> None:
    ours = {"run": sql.INSERT_RUN[name], "user": sql.INSERT_USER[name]}
    for kind, theirs in dialect_inserts(name).items():
        assert theirs._generate_cache_key() is None  # what insert_or_skip works around
        assert ours[kind]._generate_cache_key() is not None
        driver = DRIVERS[name]
        assert str(ours[kind].compile(dialect=driver)) == str(theirs.compile(dialect=driver))


@pytest.fixture
def executed() -> Iterator[list[tuple[str, CacheStats]]]:
    """Each statement any engine executes (the SQLite writer thread's included), with
    whether its compiled form came from SQLAlchemy's cache."""
    seen: list[tuple[str, CacheStats]] = []

    def record(connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        context = args[-2]
        seen.append((statement, context.cache_hit))

    event.listen(Engine, "after_cursor_execute", record)
    yield seen
    event.remove(Engine, "after_cursor_execute", record)


def inserts_into(table: str, seen: list[tuple[str, CacheStats]]) -> list[CacheStats]:
    return [hit for statement, hit in seen if statement.startswith(f"INSERT INTO {table} ")]


async def test_a_second_chat_and_handshake_reuse_the_compiled_inserts(
    migrated_db: Database, executed: list[tuple[str, CacheStats]]
) -> None:
    repository = Repository(migrated_db)
    user = unique_name("user")
    assert await repository.ensure_user(user)
    thread = await repository.create_thread(user, "t")

    async def admit(client_msg_id: str) -> None:
        admission = await repository.admit_chat(
            run_id=unique_name("run"), thread_id=thread.id, title="", user_id=user,
            client_msg_id=client_msg_id, text="hi", is_canary=False,
        )  # fmt: skip
        assert admission.created

    await admit("m1")
    executed.clear()
    await admit("m2")
    assert await repository.ensure_user(user)  # the conflicting insert: skipped, still cached

    assert inserts_into("runs", executed) == [CacheStats.CACHE_HIT]
    assert inserts_into("users", executed) == [CacheStats.CACHE_HIT]


def test_a_message_row_gives_every_column_of_a_message() -> None:
    row = message_row("t", "u", "r", role="user", text="hi", now=utc_now())
    assert set(row) == {column.key for column in Message.__table__.columns}
