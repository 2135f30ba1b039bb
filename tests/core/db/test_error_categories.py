"""Every error category, each produced by a real failure, on each backend that can have it.

Each test asserts the category (and its class), that ``on_error`` heard ``(category,
operation)`` exactly once, and that the driver's exception is kept only as the cause.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from core.db.database import Database
from core.db.errors import BY_CATEGORY, CATEGORIES, DatabaseError
from core.db.repository import Repository
from tests.fixtures.databases import ErrorLog, OpenDatabase, PostgresServer, unique_name

pg = pytest.mark.postgres


async def expect(
    category: str, operation: str, action: Awaitable[object], errors: ErrorLog
) -> DatabaseError:
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


def test_every_category_has_exactly_one_exception_class() -> None:
    assert len(CATEGORIES) == 14
    assert sorted(BY_CATEGORY) == sorted(CATEGORIES)
    assert len(set(BY_CATEGORY.values())) == len(CATEGORIES)


# --- both backends -------------------------------------------------------------------------


async def test_an_unmigrated_database_is_schema_missing(
    empty_database_url: str, open_database: OpenDatabase, db_errors: ErrorLog
) -> None:
    database = await open_database(empty_database_url)

    await expect(
        "schema_missing", "list_threads", Repository(database).list_threads("u"), db_errors
    )


async def test_a_duplicate_event_id_is_an_integrity_violation_and_leaves_no_gap(
    migrated_db: Database, db_errors: ErrorLog
) -> None:
    repository = Repository(migrated_db)
    _, thread_id = await new_thread(repository)
    event_id = unique_name("event")
    await append(repository, thread_id, event_id)

    await expect(
        "integrity_violation", "append_event", append(repository, thread_id, event_id), db_errors
    )

    seq, _ = await append(repository, thread_id, unique_name("event"))
    assert seq == 2


async def test_holding_the_only_pooled_connection_exhausts_the_pool(
    database_url: str, open_database: OpenDatabase, db_errors: ErrorLog
) -> None:
    database = await open_database(database_url, pool_size=1, max_overflow=0, pool_timeout_s=0.05)

    async with database.session("hold") as held:
        await held.execute(text("SELECT 1"))  # checks the connection out
        await expect(
            "pool_exhausted", "list_threads", Repository(database).list_threads("u"), db_errors
        )


# --- SQLite --------------------------------------------------------------------------------


async def test_sqlite_under_another_writers_lock_is_locked(
    tmp_path: Path, sqlite_template_file: Path, open_database: OpenDatabase, db_errors: ErrorLog
) -> None:
    path = tmp_path / "vigil.db"
    path.write_bytes(sqlite_template_file.read_bytes())
    database = await open_database(f"sqlite+aiosqlite:///{path}", sqlite_busy_timeout_s=0.05)
    await database.ping()
    other_process = sqlite3.connect(path, isolation_level=None)
    try:
        other_process.execute("BEGIN IMMEDIATE")
        await expect("locked", "ensure_user", Repository(database).ensure_user("u"), db_errors)
    finally:
        other_process.close()


async def test_a_sqlite_file_in_a_missing_directory_cannot_be_opened(
    tmp_path: Path, open_database: OpenDatabase, db_errors: ErrorLog
) -> None:
    database = await open_database(f"sqlite+aiosqlite:///{tmp_path / 'gone' / 'vigil.db'}")

    await expect("database_missing", "ping", database.ping(), db_errors)


async def test_writing_a_read_only_sqlite_database_is_permission_denied(
    sqlite_template_file: Path, open_database: OpenDatabase, db_errors: ErrorLog
) -> None:
    url = f"sqlite+aiosqlite:///file:{sqlite_template_file}?mode=ro&uri=true"
    database = await open_database(url)

    await expect(
        "permission_denied", "ensure_user", Repository(database).ensure_user("u"), db_errors
    )


async def test_a_value_too_big_for_sqlite_is_a_data_error(
    tmp_path: Path, open_database: OpenDatabase, db_errors: ErrorLog
) -> None:
    database = await open_database(f"sqlite+aiosqlite:///{tmp_path / 'vigil.db'}")

    async def store_huge_blob() -> None:
        async with database.session("store_blob") as session:
            await session.execute(text("SELECT zeroblob(2000000000)"))

    await expect("data_error", "store_blob", store_huge_blob(), db_errors)


# --- PostgreSQL ----------------------------------------------------------------------------


@pg
async def test_a_port_nobody_listens_on_is_connection_refused(
    closed_port: int, open_database: OpenDatabase, db_errors: ErrorLog
) -> None:
    database = await open_database(f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port}/x")

    await expect("connection_refused", "ping", database.ping(), db_errors)


@pg
async def test_an_unknown_role_fails_authentication(
    postgres: PostgresServer, open_database: OpenDatabase, db_errors: ErrorLog
) -> None:
    database = await open_database(postgres.url("postgres", user=unique_name("nobody")))

    error = await expect("authentication_failed", "ping", database.ping(), db_errors)
    assert error.sqlstate == "28000"


@pg
async def test_a_database_that_does_not_exist_is_database_missing(
    postgres: PostgresServer, open_database: OpenDatabase, db_errors: ErrorLog
) -> None:
    database = await open_database(postgres.url(unique_name("vigil_absent")))

    error = await expect("database_missing", "ping", database.ping(), db_errors)
    assert error.sqlstate == "3D000"


@pg
async def test_a_backend_terminated_mid_session_is_connection_lost_and_the_pool_recovers(
    postgres_session_url: str, open_database: OpenDatabase, db_errors: ErrorLog
) -> None:
    database = await open_database(postgres_session_url)

    async def terminated_then_query() -> None:
        async with database.session("chat_turn") as session:
            await session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
            await session.execute(text("SELECT 1"))

    await expect("connection_lost", "chat_turn", terminated_then_query(), db_errors)
    await database.ping()


@pg
async def test_a_statement_past_statement_timeout_is_a_timeout(
    postgres_session_url: str, open_database: OpenDatabase, db_errors: ErrorLog
) -> None:
    database = await open_database(postgres_session_url, statement_timeout_s=0.05)

    async def slow_query() -> None:
        async with database.session("slow_report") as session:
            await session.execute(text("SELECT pg_sleep(5)"))

    error = await expect("timeout", "slow_report", slow_query(), db_errors)
    assert error.sqlstate == "57014"


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """A TCP port that accepts connections and never says a word."""
    accepted: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    for writer in accepted:
        writer.close()
    await server.wait_closed()


@pg
async def test_a_server_that_never_answers_is_a_timeout(
    silent_server: int, open_database: OpenDatabase, db_errors: ErrorLog
) -> None:
    database = await open_database(
        f"postgresql+asyncpg://postgres@127.0.0.1:{silent_server}/x", connect_timeout_s=0.1
    )

    await expect("timeout", "ping", database.ping(), db_errors)


@pg
async def test_a_nul_character_in_a_message_is_a_data_error(
    postgres_session_url: str, open_database: OpenDatabase, db_errors: ErrorLog
) -> None:
    repository = Repository(await open_database(postgres_session_url))
    user, thread_id = await new_thread(repository)

    admit = repository.admit_run(
        run_id=unique_name("run"),
        thread_id=thread_id,
        user_id=user,
        client_msg_id="m1",
        text="nul \x00 inside",
        is_canary=False,
    )

    error = await expect("data_error", "admit_run", admit, db_errors)
    assert error.sqlstate == "22021"
    assert await repository.find_run(user, "m1") is None


@pg
async def test_a_role_without_privileges_is_permission_denied(
    postgres: PostgresServer,
    postgres_session_url: str,
    open_database: OpenDatabase,
    db_errors: ErrorLog,
) -> None:
    role = await postgres.create_role()
    database = await open_database(postgres.url(database_name(postgres_session_url), user=role))

    error = await expect(
        "permission_denied", "list_threads", Repository(database).list_threads("u"), db_errors
    )
    assert error.sqlstate == "42501"


@pg
async def test_a_concurrent_update_under_serializable_is_a_serialization_failure(
    postgres: PostgresServer,
    postgres_session_url: str,
    open_database: OpenDatabase,
    db_errors: ErrorLog,
) -> None:
    database = await open_database(postgres_session_url)
    _, thread_id = await new_thread(Repository(database))
    rename = "UPDATE threads SET title = :title WHERE id = :id"
    other = await postgres.connect(database_name(postgres_session_url))

    async def rename_after_a_concurrent_rename() -> None:
        async with database.session("rename_thread") as session:
            await session.execute(text("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"))
            await session.execute(
                text("SELECT title FROM threads WHERE id = :id"), {"id": thread_id}
            )
            async with other.transaction(isolation="serializable"):
                await other.execute("UPDATE threads SET title = 'theirs' WHERE id = $1", thread_id)
            await session.execute(text(rename), {"title": "ours", "id": thread_id})

    try:
        error = await expect(
            "serialization_failure", "rename_thread", rename_after_a_concurrent_rename(), db_errors
        )
    finally:
        await other.close()
    assert error.sqlstate == "40001"
    assert error.retryable


@pg
async def test_two_transactions_locking_in_opposite_order_end_in_a_deadlock(
    postgres_session_url: str, open_database: OpenDatabase, db_errors: ErrorLog
) -> None:
    database = await open_database(postgres_session_url)
    repository = Repository(database)
    (_, first), (_, second) = await new_thread(repository), await new_thread(repository)
    touch = text("UPDATE threads SET title = 'x' WHERE id = :id")

    async def transfer(mine: str, theirs: str, locked: asyncio.Event, other: asyncio.Event) -> None:
        async with database.session("transfer") as session:
            await session.execute(text("SET LOCAL deadlock_timeout = '10ms'"))
            await session.execute(touch, {"id": mine})
            locked.set()
            await other.wait()
            await session.execute(touch, {"id": theirs})

    a, b = asyncio.Event(), asyncio.Event()
    outcomes = await asyncio.gather(
        transfer(first, second, a, b), transfer(second, first, b, a), return_exceptions=True
    )

    failures = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(failures) == 1
    assert isinstance(failures[0], BY_CATEGORY["deadlock"])
    assert (failures[0].sqlstate, failures[0].retryable) == ("40P01", True)
    assert db_errors.calls == [("deadlock", "transfer")]


@pg
async def test_a_row_held_past_lock_timeout_is_locked(
    postgres: PostgresServer,
    postgres_session_url: str,
    open_database: OpenDatabase,
    db_errors: ErrorLog,
) -> None:
    database = await open_database(postgres_session_url)
    _, thread_id = await new_thread(Repository(database))
    other = await postgres.connect(database_name(postgres_session_url))

    async def touch_held_row() -> None:
        async with database.session("touch_thread") as session:
            await session.execute(text("SET LOCAL lock_timeout = '20ms'"))
            await session.execute(
                text("UPDATE threads SET title = 'x' WHERE id = :id"), {"id": thread_id}
            )

    try:
        async with other.transaction():
            await other.execute("SELECT 1 FROM threads WHERE id = $1 FOR UPDATE", thread_id)
            error = await expect("locked", "touch_thread", touch_held_row(), db_errors)
    finally:
        await other.close()
    assert error.sqlstate == "55P03"


@pg
async def test_an_error_with_no_category_of_its_own_is_unknown_and_keeps_its_sqlstate(
    postgres_session_url: str, open_database: OpenDatabase, db_errors: ErrorLog
) -> None:
    database = await open_database(postgres_session_url)

    async def failing_procedure() -> None:
        async with database.session("procedure") as session:
            await session.execute(text("DO $$ BEGIN RAISE EXCEPTION 'boom'; END $$"))

    error = await expect("unknown", "procedure", failing_procedure(), db_errors)
    assert error.sqlstate == "P0001"
    assert "boom" not in str(error)  # the driver's message stays out of what users see
