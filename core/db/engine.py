"""The one place an engine is built, for the application and for migrations alike.

SQLite (aiosqlite, and pysqlite for the writer thread): every new connection gets WAL,
foreign keys and a busy timeout, and the driver's own transaction handling is replaced by an
explicit ``BEGIN`` (the recipe in SQLAlchemy's pysqlite notes), so reads and writes of one
session share one transaction and DDL is transactional. PostgreSQL (asyncpg): the connect
timeout, application name and an optional statement timeout are passed to the driver, and a
pooled connection is checked before each use (``_check_on_checkout``).
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from sqlalchemy import create_engine, event, exc
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

APPLICATION_NAME = "vigil"
# Between two tries of switching a SQLite file to WAL while another connection does it.
WAL_SWITCH_RETRY_S = 0.01
# A pooled PostgreSQL connection idle at least this long is pinged before use; one used
# more recently is not (HikariCP's "alive bypass window" is 0.5 s).
PING_IDLE_AFTER_S = 1.0


def parse_url(url: str) -> URL:
    """Parse a database URL; ``ValueError`` (never a SQLAlchemy error) if it cannot be."""
    try:
        return make_url(url)
    except ArgumentError as exc:
        raise ValueError(f"cannot parse database URL ({exc})") from exc


def is_sqlite_memory(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def build_engine(
    url: str,
    *,
    connect_timeout_s: float = 5.0,
    busy_timeout_s: float = 5.0,
    statement_timeout_s: float | None = None,
    pool_size: int = 10,
    max_overflow: int = 10,
    pool_timeout_s: float = 5.0,
    ping_idle_after_s: float = PING_IDLE_AFTER_S,
    migrating: bool = False,
) -> AsyncEngine:
    """An engine for ``url``. ``migrating``: a fresh connection per use, and on SQLite the
    write lock taken at ``BEGIN`` and WAL set even on a brand-new file. A SQLite file cannot
    drop a connection, so its pool checks none (a ping would cost every transaction a round
    trip to aiosqlite's thread)."""
    parsed = parse_url(url)
    backend = parsed.get_backend_name()
    options: dict[str, Any] = {}
    if migrating:
        options = {"poolclass": NullPool}
    elif not is_sqlite_memory(parsed):  # in-memory SQLite uses one static connection
        options.update(pool_size=pool_size, max_overflow=max_overflow, pool_timeout=pool_timeout_s)
    if backend == "postgresql":
        server_settings = {"application_name": APPLICATION_NAME}
        if statement_timeout_s is not None:
            server_settings["statement_timeout"] = str(round(statement_timeout_s * 1000))
        options["connect_args"] = {"timeout": connect_timeout_s, "server_settings": server_settings}
    try:
        engine = create_async_engine(parsed, **options)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise ValueError(f"unsupported database URL ({exc})") from exc
    if backend == "sqlite":
        _configure_sqlite(engine.sync_engine, busy_timeout_s, migrating=migrating)
    elif backend == "postgresql" and not migrating:
        _check_on_checkout(engine.sync_engine, ping_idle_after_s)
    return engine


def _check_on_checkout(engine: Engine, ping_idle_after_s: float) -> None:
    """Replace a pooled connection the server dropped before it is used, as SQLAlchemy's
    ``pool_pre_ping`` does, for less: that one pings every connection on every checkout,
    three round trips with asyncpg (``BEGIN``, the ping, ``ROLLBACK``), three of the eight
    of an event batch. Here a connection whose socket the server has closed (a restart, a
    terminated backend: the driver has seen it go) is replaced without a round trip, and
    only one idle at least ``ping_idle_after_s`` is pinged (a connection a firewall or a
    failover dropped silently while it sat in the pool). A connection in steady use is
    never pinged; one used moments ago that is dead all the same fails its statement, which
    invalidates it and every older one (SQLAlchemy's disconnect handling)."""
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        # ``info`` is cleared when the connection is replaced: a new one is not pinged.
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if record.driver_connection.is_closed():
            raise exc.DisconnectionError("the server closed the connection")
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < ping_idle_after_s:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if not dialect.is_disconnect(error, dbapi_connection, None):
                raise
            # As pool_pre_ping does: the connections pooled before it are suspect too.
            raise exc.InvalidatePoolError("the pooled connection did not answer") from error


def build_sqlite_writer_engine(url: str, *, busy_timeout_s: float = 5.0) -> Engine:
    """A synchronous engine (pysqlite) on the same SQLite file as ``url``, configured as the
    async one, with one connection: the engine of ``Database``'s writer thread, which runs a
    whole transaction per call instead of a round trip between threads per statement."""
    parsed = parse_url(url).set(drivername="sqlite+pysqlite")
    engine = create_engine(parsed, pool_size=1, max_overflow=0)
    # No ``begin`` listener: its caller issues ``BEGIN`` itself (``begin_on_driver``). Any
    # listener of an engine's connection events makes SQLAlchemy dispatch four of them for
    # every statement, listened to or not: about a quarter of a hot-path transaction's CPU
    # here (docs/telemetry.md).
    _configure_sqlite_connections(engine, busy_timeout_s, migrating=False)
    return engine


def begin_on_driver(connection: Connection, statement: str = "BEGIN") -> None:
    """Begin the SQLite transaction on the driver's own cursor, whose ``isolation_level``
    is None (it never begins one itself): through SQLAlchemy the statement would get a span
    of the statement instrumentation, for a statement that says nothing. Deferred by
    default: the write lock is taken at the transaction's first write, and the repository's
    writing transactions write first, so they wait on busy_timeout instead of failing when a
    read lock cannot be upgraded."""
    cursor = connection.connection.cursor()
    try:
        cursor.execute(statement)
    finally:
        cursor.close()


def _configure_sqlite(engine: Engine, busy_timeout_s: float, *, migrating: bool) -> None:
    _configure_sqlite_connections(engine, busy_timeout_s, migrating=migrating)
    begin = "BEGIN IMMEDIATE" if migrating else "BEGIN"

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        begin_on_driver(connection, begin)


def _configure_sqlite_connections(
    engine: Engine, busy_timeout_s: float, *, migrating: bool
) -> None:
    busy_timeout_ms = max(0, round(busy_timeout_s * 1000))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide where transactions begin (begin_on_driver).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA page_count")
            (pages,) = cursor.fetchone()
            # WAL persists in the file. Setting it writes a header, so a mere ping of a path
            # that is not a database yet leaves it empty; the migration sets it from the start.
            if pages or migrating:
                switch_to_wal(cursor, busy_timeout_s)
            cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()


def switch_to_wal(cursor: Any, busy_timeout_s: float) -> None:
    """``PRAGMA journal_mode = WAL``, tried again while SQLite answers "locked", until the
    busy timeout. Connections switching a new file at the same time (replicas migrating it
    at once) each hold a shared lock when they ask for the exclusive one; SQLite refuses all
    but one at once, without calling the busy handler, so ``busy_timeout`` does not cover
    it (1 in 200 tries of three processes here)."""
    deadline = time.monotonic() + busy_timeout_s
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(WAL_SWITCH_RETRY_S)
