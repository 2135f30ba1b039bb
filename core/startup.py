"""Start-up checks that turn a bad deployment into one clear line before serving anything:
the database must answer and its schema must be at the latest migration."""

from __future__ import annotations

import asyncio

from cryptography.hazmat.primitives.serialization import load_pem_public_key

from core.db import migrate
from core.db.database import Database
from core.db.errors import DatabaseError
from core.settings import Settings, SettingsError
from core.telemetry.logging import get_logger

log = get_logger(__name__)


def check_keys(settings: Settings) -> None:
    if settings.jwt_public_key:
        try:
            load_pem_public_key(settings.jwt_public_key.encode())
        except ValueError as exc:
            raise SettingsError("VIGIL_JWT_PUBLIC_KEY", "not a PEM-encoded public key") from exc


async def check_database(settings: Settings) -> None:
    """Refuse to start on an unreachable or unmigrated database (dev mode migrates it)."""
    database = Database(settings.database_url, connect_timeout_s=settings.db_connect_timeout_s)
    try:
        await database.connect()
        await database.ping()
        status = await database.schema_status()
        if status.up_to_date:
            return
        if settings.mode != "dev":
            current = status.current or "none"
            raise SettingsError(
                "VIGIL_DATABASE_URL",
                f"schema not migrated (at revision {current}, latest {status.head}); "
                "run `vigil db upgrade`",
            )
        log.info("dev_mode_migrating", current=status.current, head=status.head)
        await asyncio.to_thread(migrate.upgrade, settings.database_url)
    except DatabaseError as exc:
        raise SettingsError(
            "VIGIL_DATABASE_URL", f"database unreachable ({exc.category}: {_first_line(exc)})"
        ) from exc
    finally:
        await database.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc.__cause__ or exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


async def check_startup(settings: Settings) -> None:
    check_keys(settings)
    await check_database(settings)
