"""``Database``: transactions, ping, schema status, and what reaches ``on_error``."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode, Tracer
from sqlalchemy import Connection, func, insert, select, text

from core.db import migrate
from core.db.database import Database
from core.db.engine import build_engine
from core.db.errors import DatabaseError
from core.db.models import Thread
from core.db.repository import Repository
from core.telemetry.tracing import instrument_engine
from tests.fixtures.databases import ErrorLog, OpenDatabase, PostgresServer, unique_name


async def test_a_session_commits_when_its_block_ends(
    migrated_db: Database, db_errors: ErrorLog
) -> None:
    repository = Repository(migrated_db)
    user = unique_name("user")
    await repository.ensure_user(user)

    thread = await repository.create_thread(user, "hello")

    assert await repository.get_thread(user, thread.id) == thread
    assert db_errors.calls == []


async def test_a_session_rolls_back_and_lets_a_non_database_error_through_unchanged(
    migrated_db: Database, db_errors: ErrorLog
) -> None:
    user = unique_name("user")
    await Repository(migrated_db).ensure_user(user)

    with pytest.raises(ZeroDivisionError):
        async with migrated_db.session("half_done") as session:
            session.add(Thread(id="t-" + user, user_id=user, epoch="e", title="x"))
            await session.flush()
            _ = 1 / 0

    async with migrated_db.session("count") as session:
        count = await session.scalar(select(func.count()).where(Thread.user_id == user))
    assert count == 0
    assert db_errors.calls == []


async def test_ping_succeeds_and_the_schema_is_up_to_date_on_a_migrated_database(
    migrated_db: Database, database_url: str
) -> None:
    await migrated_db.ping()
    status = await migrated_db.schema_status()

    assert status.up_to_date
    assert status.current == status.head
    assert migrated_db.dialect == database_url.split("+", maxsplit=1)[0]


async def test_using_a_database_before_connect_is_a_programming_error(database_url: str) -> None:
    database = Database(database_url)

    with pytest.raises(RuntimeError, match="connect"):
        await database.ping()


def test_an_unparseable_url_is_a_value_error_not_a_sqlalchemy_one() -> None:
    with pytest.raises(ValueError, match="cannot parse"):
        Database("not a url at all")


async def test_close_then_connect_again_works(migrated_db: Database) -> None:
    await migrated_db.close()
    await migrated_db.close()
    await migrated_db.connect()

    await migrated_db.ping()


async def test_a_migrated_sqlite_database_runs_in_wal_mode_with_foreign_keys(
    tmp_path: Path, open_database: OpenDatabase
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'vigil.db'}"
    await migrate.upgrade_async(url)
    database = await open_database(url)

    async with database.session("pragmas") as session:
        journal = await session.scalar(text("PRAGMA journal_mode"))
        foreign_keys = await session.scalar(text("PRAGMA foreign_keys"))

    assert (journal, foreign_keys) == ("wal", 1)


async def test_pinging_a_sqlite_path_that_is_no_database_yet_leaves_it_empty(
    tmp_path: Path, open_database: OpenDatabase
) -> None:
    path = tmp_path / "later.db"
    database = await open_database(f"sqlite+aiosqlite:///{path}")

    await database.ping()

    assert not path.exists() or path.stat().st_size == 0


@pytest.mark.postgres
async def test_a_pooled_connection_the_server_closed_is_replaced_without_an_error(
    postgres_session_url: str,
    open_database: OpenDatabase,
    postgres_server: PostgresServer,
    db_errors: ErrorLog,
) -> None:
    database = await open_database(postgres_session_url, pool_size=1, max_overflow=0)
    async with database.session("who_am_i") as session:
        pid = await session.scalar(text("SELECT pg_backend_pid()"))

    # The second argument waits (up to 5 s) until the backend is gone, its socket closed.
    await postgres_server.execute(f"SELECT pg_terminate_backend({pid}, 5000)")
    async with database.session("who_am_i") as session:
        new_pid = await session.scalar(text("SELECT pg_backend_pid()"))

    assert new_pid != pid
    assert db_errors.calls == []


@pytest.mark.postgres
async def test_a_pooled_connection_is_pinged_only_once_it_sat_idle(
    postgres_session_url: str,
) -> None:
    engine = build_engine(postgres_session_url, pool_size=1, max_overflow=0, ping_idle_after_s=0.3)
    sent: list[str] = []
    try:
        async with engine.connect() as connection:
            raw = await connection.get_raw_connection()
            raw.driver_connection.add_query_logger(lambda record: sent.append(record.query))

        async def use() -> list[str]:
            sent.clear()
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            return list(sent)

        assert ";" not in await use()  # just used: no ping
        await asyncio.sleep(0.4)
        assert (await use())[:2] == ["BEGIN;", ";"]  # idle past the window: pinged first
        assert ";" not in await use()
    finally:
        await engine.dispose()


def add_thread(connection: Connection, user: str) -> None:
    """The user's thread ``t-{user}``, inside ``run_transaction``'s work."""
    connection.execute(insert(Thread).values(id="t-" + user, user_id=user, epoch="e", title=""))


async def test_run_transaction_commits_what_its_work_wrote_and_returns_its_result(
    migrated_db: Database, db_errors: ErrorLog
) -> None:
    user = unique_name("user")
    await Repository(migrated_db).ensure_user(user)

    def write(connection: Connection) -> str:
        add_thread(connection, user)
        return "written"

    assert await migrated_db.run_transaction("write", write, write=True) == "written"
    assert await Repository(migrated_db).get_thread(user, "t-" + user) is not None
    assert db_errors.calls == []


async def test_run_transaction_rolls_back_and_lets_a_non_database_error_through_unchanged(
    migrated_db: Database, db_errors: ErrorLog
) -> None:
    user = unique_name("user")
    await Repository(migrated_db).ensure_user(user)

    def half_done(connection: Connection) -> None:
        add_thread(connection, user)
        _ = 1 / 0

    with pytest.raises(ZeroDivisionError):
        await migrated_db.run_transaction("half_done", half_done, write=True)
    assert await Repository(migrated_db).get_thread(user, "t-" + user) is None
    assert db_errors.calls == []


async def test_run_transaction_raises_a_database_failure_with_its_category_and_operation(
    migrated_db: Database, db_errors: ErrorLog
) -> None:
    user = unique_name("user")
    await Repository(migrated_db).ensure_user(user)

    def twice(connection: Connection) -> None:
        for _ in range(2):
            add_thread(connection, user)

    with pytest.raises(DatabaseError) as raised:
        await migrated_db.run_transaction("twice", twice, write=True)
    assert (raised.value.category, raised.value.operation) == ("integrity_violation", "twice")
    assert db_errors.calls == [("integrity_violation", "twice")]
    assert await Repository(migrated_db).get_thread(user, "t-" + user) is None


async def test_a_cancelled_sqlite_transaction_keeps_the_writers_turn_until_its_thread_ends(
    tmp_path: Path, open_database: OpenDatabase
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'vigil.db'}"
    await migrate.upgrade_async(url)
    database = await open_database(url)
    await Repository(database).ensure_user("alice")
    started, release = threading.Event(), threading.Event()

    def slow(connection: Connection) -> None:
        add_thread(connection, "alice")
        started.set()
        release.wait(10)

    caller = asyncio.create_task(database.run_transaction("slow", slow, write=True))
    await asyncio.to_thread(started.wait, 10)
    caller.cancel()
    await asyncio.sleep(0)
    # Another writer of this process queues behind the transaction still running.
    other = asyncio.create_task(Repository(database).create_thread("alice", "next"))
    await asyncio.sleep(0.2)
    assert not caller.done() and not other.done()

    release.set()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await other
    # Nobody waits for it any more, but the transaction ran to its end.
    assert await Repository(database).get_thread("alice", "t-alice") is not None


async def traced_failing_transaction(
    database_url: str, open_database: OpenDatabase
) -> tuple[Database, InMemorySpanExporter, Tracer, Callable[[Connection], None]]:
    """A database whose spans are recorded (none yet), and a transaction's work that fails
    on its second statement (the same thread twice: integrity_violation)."""
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    tracer = provider.get_tracer("test")
    database = await open_database(database_url, tracer=tracer)
    instrument_engine(database.traced_engine, provider)
    user = unique_name("user")
    await Repository(database).ensure_user(user)
    spans.clear()

    def twice(connection: Connection) -> None:
        for _ in range(2):
            add_thread(connection, user)

    return database, spans, tracer, twice


async def test_a_transaction_run_as_one_is_one_span_with_the_failures_category(
    database_url: str, open_database: OpenDatabase
) -> None:
    database, spans, _, twice = await traced_failing_transaction(database_url, open_database)

    with pytest.raises(DatabaseError):
        await database.run_transaction("twice", twice, write=True)

    (span,) = spans.get_finished_spans()  # no span per statement inside it
    assert span.name == "db.transaction twice"
    assert span.attributes["db.system.name"] == database.dialect
    assert span.attributes["error.type"] == "integrity_violation"
    assert span.status.status_code == StatusCode.ERROR


async def test_a_transaction_traced_in_the_callers_span_makes_no_span_of_its_own(
    database_url: str, open_database: OpenDatabase
) -> None:
    database, spans, tracer, twice = await traced_failing_transaction(database_url, open_database)

    with tracer.start_as_current_span("batch") as batch, pytest.raises(DatabaseError):
        await database.run_transaction("twice", twice, write=True, span=batch)

    (span,) = spans.get_finished_spans()
    assert span.name == "batch"
    assert span.attributes["vigil.db.operation"] == "twice"
    assert span.attributes["db.system.name"] == database.dialect
    assert span.attributes["error.type"] == "integrity_violation"
    assert span.status.status_code == StatusCode.ERROR


async def test_a_transaction_without_its_own_span_has_one_only_when_it_fails(
    database_url: str, open_database: OpenDatabase
) -> None:
    database, spans, _, twice = await traced_failing_transaction(database_url, open_database)
    user = unique_name("user")
    await Repository(database).ensure_user(user)
    spans.clear()

    await database.run_transaction(
        "once", lambda c: add_thread(c, user), write=True, own_span=False
    )
    assert spans.get_finished_spans() == ()
    before = time.time_ns()
    with pytest.raises(DatabaseError):
        await database.run_transaction("twice", twice, write=True, own_span=False)

    (span,) = spans.get_finished_spans()
    assert span.name == "db.transaction twice"
    assert before <= span.start_time < span.end_time
    assert span.attributes["error.type"] == "integrity_violation"
    assert span.status.status_code == StatusCode.ERROR


async def test_a_sessions_statements_get_spans_and_a_hot_transactions_do_not(
    database_url: str, open_database: OpenDatabase
) -> None:
    """The instrumented engine is the sessions' (and pings'); ``run_transaction`` runs on
    the plain one, which shares its pool but none of its listeners."""
    database, spans, _, _ = await traced_failing_transaction(database_url, open_database)

    async with database.session("read") as session:
        await session.execute(text("SELECT 1"))
    (statement,) = spans.get_finished_spans()
    assert statement.name.startswith("SELECT")
    spans.clear()

    await database.run_transaction("read", lambda c: c.execute(text("SELECT 1")).scalar())
    assert [s.name for s in spans.get_finished_spans()] == ["db.transaction read"]
