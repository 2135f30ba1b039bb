"""Every error category from a real failure: the ones both backends share, and SQLite's own.

PostgreSQL's are in test_errors_postgres.py. Each test checks the category and its class,
that ``on_error`` heard ``(category, operation)`` exactly once, and that the driver's
exception is kept only as the cause.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from core.db.database import Database
from core.db.errors import BY_CATEGORY, CATEGORIES
from core.db.repository import Repository
from tests.core.db.failures import append, expect, new_thread
from tests.fixtures.databases import ErrorLog, OpenDatabase, unique_name


def test_every_category_has_exactly_one_exception_class() -> None:
    assert len(CATEGORIES) == 14
    assert sorted(BY_CATEGORY) == sorted(CATEGORIES)
    assert len(set(BY_CATEGORY.values())) == len(CATEGORIES)


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


async def test_a_naive_timestamp_is_refused_as_a_data_error_and_leaves_no_gap(
    migrated_db: Database, db_errors: ErrorLog
) -> None:
    repository = Repository(migrated_db)
    _, thread_id = await new_thread(repository)

    naive = repository.append_event(
        thread_id=thread_id,
        run_id="run",
        event_id=unique_name("event"),
        type="agent_thinking",
        build=lambda seq, epoch: {"seq": seq},
        created_at=datetime.now(),  # naive: the point of the test
    )

    await expect("data_error", "append_event", naive, db_errors)
    seq, _ = await append(repository, thread_id, unique_name("event"))
    assert seq == 1


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


async def test_sqlite_held_by_another_processes_writer_is_locked(
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


async def test_a_sqlite_writer_queued_behind_this_processes_long_writer_is_locked(
    tmp_path: Path, open_database: OpenDatabase, db_errors: ErrorLog
) -> None:
    database = await open_database(
        f"sqlite+aiosqlite:///{tmp_path / 'vigil.db'}", sqlite_busy_timeout_s=0.05
    )
    repository = Repository(database)

    async with database.session("long_import", write=True):
        await expect("locked", "ensure_user", repository.ensure_user("u"), db_errors)


@pytest.fixture
async def new_sqlite_workers() -> AsyncIterator[None]:
    """Wait at teardown for the aiosqlite worker threads the test started to stop.

    aiosqlite (0.22) stops the worker of a connection that failed to open without awaiting
    it; the worker then reports to the test's event loop, which may be closed by then.
    """
    before = set(threading.enumerate())
    yield
    workers = [
        thread
        for thread in set(threading.enumerate()) - before
        if thread.name.endswith("(_connection_worker_thread)")
    ]
    await asyncio.to_thread(lambda: [worker.join(timeout=5) for worker in workers])


@pytest.mark.usefixtures("new_sqlite_workers")
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
