"""The Alembic migrations build exactly the schema the models declare, on both backends."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from core.db import migrate
from core.db.engine import build_engine
from core.db.errors import ConnectionRefused
from core.db.models import Base
from tests.fixtures.databases import OpenDatabase

TABLES = {"users", "threads", "messages", "runs", "events"}


async def _inspect(url: str) -> tuple[set[str], list[object]]:
    def read(connection: Connection) -> tuple[set[str], list[object]]:
        tables = set(inspect(connection).get_table_names())
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        return tables, diff

    engine = build_engine(url, migrating=True)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(read)
    finally:
        await engine.dispose()


async def test_upgrade_creates_exactly_the_tables_the_models_declare(
    empty_database_url: str,
) -> None:
    await migrate.upgrade_async(empty_database_url)

    tables, diff = await _inspect(empty_database_url)
    assert tables == TABLES | {"alembic_version"}
    assert diff == []


async def test_an_unmigrated_database_reports_no_revision_until_upgraded(
    empty_database_url: str, open_database: OpenDatabase
) -> None:
    database = await open_database(empty_database_url)

    before = await database.schema_status()
    await migrate.upgrade_async(empty_database_url)
    after = await database.schema_status()

    assert (before.current, before.up_to_date) == (None, False)
    assert (after.current, after.up_to_date) == (migrate.head_revision(), True)


async def test_upgrading_twice_changes_nothing(migrated_db: object, database_url: str) -> None:
    await migrate.upgrade_async(database_url)

    _, diff = await _inspect(database_url)
    assert diff == []


async def test_downgrade_to_base_removes_every_table(empty_database_url: str) -> None:
    await migrate.upgrade_async(empty_database_url)
    # The alembic command line's own path: env.py builds its engine and runs its own loop.
    await asyncio.to_thread(command.downgrade, migrate.alembic_config(empty_database_url), "base")

    tables, _ = await _inspect(empty_database_url)
    assert tables == {"alembic_version"}


def test_upgrade_creates_the_missing_directory_of_a_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "not" / "yet" / "vigil.db"

    migrate.upgrade(f"sqlite+aiosqlite:///{path}")

    assert path.is_file()


@pytest.mark.postgres
def test_upgrade_of_an_unreachable_database_raises_the_project_error(closed_port: int) -> None:
    with pytest.raises(ConnectionRefused) as info:
        migrate.upgrade(f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port}/vigil")

    assert info.value.operation == "upgrade"


def test_the_packaged_scripts_define_one_head() -> None:
    versions = Path(migrate.MIGRATIONS_DIR, "versions")

    assert migrate.head_revision() == "0002_run_leases"
    assert (migrate.MIGRATIONS_DIR / "script.py.mako").is_file()
    assert sorted(p.name for p in versions.glob("*.py")) == [
        "0001_initial.py",
        "0002_run_leases.py",
    ]


async def test_upgrades_started_together_in_one_process_take_turns(
    empty_database_url: str,
) -> None:
    await asyncio.gather(*(migrate.upgrade_async(empty_database_url) for _ in range(3)))

    _, diff = await _inspect(empty_database_url)
    assert diff == []


async def test_replicas_upgrading_the_same_database_at_once_all_succeed(
    empty_database_url: str,
) -> None:
    script = "import sys; from core.db import migrate; migrate.upgrade(sys.argv[1])"
    replicas = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, empty_database_url, stderr=asyncio.subprocess.PIPE
        )
        for _ in range(2)
    ]

    results = [await replica.communicate() for replica in replicas]

    assert [replica.returncode for replica in replicas] == [0, 0], results
    _, diff = await _inspect(empty_database_url)
    assert diff == []
