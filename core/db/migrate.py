"""Schema migrations with Alembic, configured in code (no alembic.ini).

``upgrade`` is what ``vigil db upgrade`` runs: synchronous, with its own event loop, so it
cannot be called inside a running loop; async code awaits ``upgrade_async`` instead. Both
hand Alembic an open connection (``config.attributes["connection"]``), which
``migrations/env.py`` uses as it is; the env builds its own engine only when run by the
``alembic`` command line.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db.engine import build_engine, is_sqlite_memory, parse_url
from core.db.errors import DRIVER_ERRORS, translate

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
URL_ATTRIBUTE = "vigil.database_url"
# CommandError: e.g. the database is at a revision these scripts do not know (a newer release).
_ALEMBIC_IN_USE = threading.Lock()
_MIGRATION_ERRORS: tuple[type[BaseException], ...] = (*DRIVER_ERRORS, CommandError)


def alembic_config(database_url: str | None = None) -> Config:
    """An Alembic ``Config`` pointing at the packaged scripts (and at ``database_url``)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Passed as an attribute, not a main option, so a '%' in a password is not interpolated.
    config.attributes[URL_ATTRIBUTE] = database_url
    return config


def upgrade(database_url: str) -> None:
    """Apply every migration up to head (``alembic upgrade head``); idempotent.

    A missing parent directory of a SQLite file is created. Raises ``DatabaseError``
    (operation ``"upgrade"``) when the database cannot be reached or migrated.
    """
    asyncio.run(upgrade_async(database_url))


async def upgrade_async(database_url: str) -> None:
    """``upgrade`` for code already running in an event loop.

    Concurrent upgrades of one database are safe: across processes the database serializes
    them (see ``migrations/env.py``); within a process they take turns, since Alembic keeps
    its running migration in module globals.
    """
    _create_sqlite_parent(database_url)
    config = alembic_config(database_url)
    await asyncio.to_thread(_ALEMBIC_IN_USE.acquire)
    engine = build_engine(database_url, migrating=True)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_upgrade_head, config)
            await connection.commit()
    except _MIGRATION_ERRORS as exc:
        raise translate(exc, "upgrade") from exc
    finally:
        await engine.dispose()
        _ALEMBIC_IN_USE.release()


def _upgrade_head(connection: Connection, config: Config) -> None:
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def head_revision() -> str:
    """The newest revision the packaged scripts define."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migration scripts found in {MIGRATIONS_DIR}")
    return head


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at; ``None`` when it was never migrated.

    Raises ``DatabaseError`` (operation ``"current_revision"``) when it cannot be read.
    """
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(read_revision)
    except DRIVER_ERRORS as exc:
        raise translate(exc, "current_revision") from exc


def read_revision(connection: Connection) -> str | None:
    """``current_revision`` on a synchronous connection (for ``AsyncConnection.run_sync``)."""
    return MigrationContext.configure(connection).get_current_revision()


def _create_sqlite_parent(database_url: str) -> None:
    url = parse_url(database_url)
    if url.get_backend_name() != "sqlite" or is_sqlite_memory(url) or url.query.get("uri"):
        return
    assert url.database is not None
    Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
