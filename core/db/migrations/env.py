"""Alembic environment: async, over the same engine factory the application uses.

Run by ``core.db.migrate``, which passes an open connection in ``config.attributes``; there
is no alembic.ini. Without a connection (the ``alembic`` command line, given a config whose
``sqlalchemy.url`` is set) it builds its own engine. Offline mode (``--sql``) renders DDL.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from core.db.engine import build_engine, parse_url
from core.db.migrate import URL_ATTRIBUTE
from core.db.models import Base

LOCK_KEY = 0x76_69_67_69_6C  # "vigil": the advisory lock every migration holds
config = context.config
database_url: str = config.attributes.get(URL_ATTRIBUTE) or config.get_main_option(
    "sqlalchemy.url", ""
)
shared_connection: Connection | None = config.attributes.get("connection")
# SQLite cannot ALTER most things: later migrations copy-and-move tables ("batch" mode).
render_as_batch = parse_url(database_url).get_backend_name() == "sqlite"


def run_offline() -> None:
    context.configure(
        url=database_url,
        target_metadata=Base.metadata,
        literal_binds=True,
        render_as_batch=render_as_batch,
    )
    with context.begin_transaction():
        context.run_migrations()


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=render_as_batch,
        compare_type=True,
        # One transaction for the version read and every migration, on SQLite too: Alembic
        # takes SQLite's DDL for non-transactional and commits each migration on its own,
        # which let go of the write lock in between, so a replica that read the version
        # meanwhile applied a migration the other had already applied. SQLite's DDL is
        # transactional.
        transactional_ddl=True,
    )
    with context.begin_transaction():
        # Replicas may migrate at the same moment: the second waits, then finds head. SQLite
        # gets the same from BEGIN IMMEDIATE (core.db.migrate builds its engine that way).
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        context.run_migrations()


async def run_online() -> None:
    engine = build_engine(database_url, migrating=True)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_migrate)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_offline()
elif shared_connection is not None:
    _migrate(shared_connection)
else:
    asyncio.run(run_online())
