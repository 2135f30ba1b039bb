"""Every error category PostgreSQL can produce, each from a real failure of the server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from core.db.errors import BY_CATEGORY
from core.db.repository import Repository
from tests.core.db.failures import database_name, expect, new_thread
from tests.fixtures.databases import ErrorLog, OpenDatabase, PostgresServer, unique_name

pytestmark = pytest.mark.postgres


async def test_a_port_nobody_listens_on_is_connection_refused(
    closed_port: int, open_database: OpenDatabase, db_errors: ErrorLog
) -> None:
    database = await open_database(f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port}/x")

    await expect("connection_refused", "ping", database.ping(), db_errors)


async def test_an_unknown_role_fails_authentication(
    postgres_server: PostgresServer, open_database: OpenDatabase, db_errors: ErrorLog
) -> None:
    database = await open_database(postgres_server.url("postgres", user=unique_name("nobody")))

    error = await expect("authentication_failed", "ping", database.ping(), db_errors)
    assert error.sqlstate == "28000"


async def test_a_database_that_does_not_exist_is_database_missing(
    postgres_server: PostgresServer, open_database: OpenDatabase, db_errors: ErrorLog
) -> None:
    database = await open_database(postgres_server.url(unique_name("vigil_absent")))

    error = await expect("database_missing", "ping", database.ping(), db_errors)
    assert error.sqlstate == "3D000"


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


async def test_a_server_that_never_answers_is_a_timeout(
    silent_server: int, open_database: OpenDatabase, db_errors: ErrorLog
) -> None:
    database = await open_database(
        f"postgresql+asyncpg://postgres@127.0.0.1:{silent_server}/x", connect_timeout_s=0.1
    )

    await expect("timeout", "ping", database.ping(), db_errors)


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


async def test_a_role_without_privileges_is_permission_denied(
    postgres_server: PostgresServer,
    postgres_session_url: str,
    open_database: OpenDatabase,
    db_errors: ErrorLog,
) -> None:
    role = await postgres_server.create_role()
    database = await open_database(
        postgres_server.url(database_name(postgres_session_url), user=role)
    )

    error = await expect(
        "permission_denied", "list_threads", Repository(database).list_threads("u"), db_errors
    )
    assert error.sqlstate == "42501"


async def test_a_concurrent_update_under_serializable_is_a_serialization_failure(
    postgres_server: PostgresServer,
    postgres_session_url: str,
    open_database: OpenDatabase,
    db_errors: ErrorLog,
) -> None:
    database = await open_database(postgres_session_url)
    _, thread_id = await new_thread(Repository(database))
    rename = "UPDATE threads SET title = :title WHERE id = :id"
    other = await postgres_server.connect(database_name(postgres_session_url))

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


async def test_a_row_held_past_lock_timeout_is_locked(
    postgres_server: PostgresServer,
    postgres_session_url: str,
    open_database: OpenDatabase,
    db_errors: ErrorLog,
) -> None:
    database = await open_database(postgres_session_url)
    _, thread_id = await new_thread(Repository(database))
    other = await postgres_server.connect(database_name(postgres_session_url))

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
