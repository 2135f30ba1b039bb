"""The database layer's one exception tree, and the single place driver errors are mapped.

Every failure of the database, its driver or the connection pool leaves ``core.db`` as one
of these, raised ``from`` the original exception (so a log keeps the driver's own words)::

    DatabaseError                .category              what happened
    ├── ConnectionRefused        connection_refused     nothing listens; unknown host; full
    ├── ConnectionLost           connection_lost        an open connection was closed
    ├── AuthenticationFailed     authentication_failed  unknown role; bad password; no hba line
    ├── DatabaseMissing          database_missing       no such database; SQLite file unopenable
    ├── DatabaseTimeout          timeout                statement_timeout; connect/ping timeout
    ├── PoolExhausted            pool_exhausted         no pooled connection in pool_timeout_s
    ├── IntegrityViolation       integrity_violation    unique, foreign key, not null, check
    ├── SerializationFailure     serialization_failure  SERIALIZABLE conflict                 (*)
    ├── Deadlock                 deadlock               the server broke a lock cycle         (*)
    ├── SchemaMissing            schema_missing         tables or columns absent: not migrated
    ├── DataError                data_error             a value the column cannot hold
    ├── PermissionDenied         permission_denied      role lacks a privilege; read-only file
    ├── DatabaseLocked           locked                 SQLite busy; PostgreSQL lock_timeout  (*)
    └── UnknownDatabaseError     unknown                anything else (its SQLSTATE is kept)

    (*) ``retryable``: the same transaction, retried, can succeed.

``str(error)`` names only the operation and the category, never SQL, parameters or the
driver's message, so it is safe to show a user; ``detail`` and ``sqlstate`` are for logs.
"""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterator

import asyncpg
import asyncpg.exceptions
from sqlalchemy import exc as sa_exc


class DatabaseError(Exception):
    """A database operation failed; ``category`` says how, ``operation`` says where."""

    category = "unknown"
    description = "the database failed"
    retryable = False

    def __init__(self, operation: str, *, detail: str = "", sqlstate: str | None = None) -> None:
        super().__init__(f"{operation}: {self.category} ({self.description})")
        self.operation = operation
        self.detail = detail
        self.sqlstate = sqlstate


class ConnectionRefused(DatabaseError):
    category = "connection_refused"
    description = "could not connect to the database"


class ConnectionLost(DatabaseError):
    category = "connection_lost"
    description = "the connection to the database was closed"


class AuthenticationFailed(DatabaseError):
    category = "authentication_failed"
    description = "the database refused the credentials"


class DatabaseMissing(DatabaseError):
    category = "database_missing"
    description = "the database does not exist or cannot be opened"


class DatabaseTimeout(DatabaseError):
    category = "timeout"
    description = "the database did not answer in time"


class PoolExhausted(DatabaseError):
    category = "pool_exhausted"
    description = "no database connection was free in time"


class IntegrityViolation(DatabaseError):
    category = "integrity_violation"
    description = "the change breaks a constraint"


class SerializationFailure(DatabaseError):
    category = "serialization_failure"
    description = "a concurrent transaction conflicted; retry"
    retryable = True


class Deadlock(DatabaseError):
    category = "deadlock"
    description = "transactions waited on each other; retry"
    retryable = True


class SchemaMissing(DatabaseError):
    category = "schema_missing"
    description = "the schema is not migrated; run `vigil db upgrade`"


class DataError(DatabaseError):
    category = "data_error"
    description = "a value cannot be stored"


class PermissionDenied(DatabaseError):
    category = "permission_denied"
    description = "the database refused the operation"


class DatabaseLocked(DatabaseError):
    category = "locked"
    description = "the database is locked by another writer; retry"
    retryable = True


class UnknownDatabaseError(DatabaseError):
    category = "unknown"
    description = "the database failed"


_CLASSES: tuple[type[DatabaseError], ...] = (
    ConnectionRefused,
    ConnectionLost,
    AuthenticationFailed,
    DatabaseMissing,
    DatabaseTimeout,
    PoolExhausted,
    IntegrityViolation,
    SerializationFailure,
    Deadlock,
    SchemaMissing,
    DataError,
    PermissionDenied,
    DatabaseLocked,
    UnknownDatabaseError,
)
BY_CATEGORY: dict[str, type[DatabaseError]] = {cls.category: cls for cls in _CLASSES}
CATEGORIES: tuple[str, ...] = tuple(BY_CATEGORY)

# What a failure can be, for ``except``. SQLAlchemy wraps the drivers' errors while a
# connection is in use, but connecting lets some through unwrapped: the socket's OSError,
# asyncpg's TimeoutError and (SQLAlchemy 2.0.x) asyncpg's own exceptions, e.g. 28000, 3D000.
DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    sa_exc.SQLAlchemyError,
    sqlite3.Error,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    OSError,  # includes TimeoutError
)

# PostgreSQL SQLSTATE codes (Appendix A of its manual): exact codes first, then classes.
_SQLSTATE: dict[str, str] = {
    "08001": "connection_refused",  # sqlclient_unable_to_establish_sqlconnection
    "08004": "connection_refused",  # sqlserver_rejected_establishment_of_sqlconnection
    "53300": "connection_refused",  # too_many_connections
    "57P03": "connection_refused",  # cannot_connect_now (starting up, shutting down)
    "57P01": "connection_lost",  # admin_shutdown (pg_terminate_backend, server stop)
    "57P02": "connection_lost",  # crash_shutdown
    "57P05": "connection_lost",  # idle_session_timeout
    "25P03": "connection_lost",  # idle_in_transaction_session_timeout
    "3D000": "database_missing",  # invalid_catalog_name
    "57014": "timeout",  # query_canceled (statement_timeout)
    "40001": "serialization_failure",
    "40P01": "deadlock",
    "40002": "integrity_violation",  # transaction_integrity_constraint_violation
    "42P01": "schema_missing",  # undefined_table
    "42703": "schema_missing",  # undefined_column
    "3F000": "schema_missing",  # invalid_schema_name
    "42501": "permission_denied",  # insufficient_privilege
    "55P03": "locked",  # lock_not_available (lock_timeout, NOWAIT)
}
_SQLSTATE_CLASS: dict[str, str] = {
    "08": "connection_lost",  # connection_exception
    "22": "data_error",  # data_exception
    "23": "integrity_violation",  # integrity_constraint_violation
    "28": "authentication_failed",  # invalid_authorization_specification (28000, 28P01)
}

# SQLite primary result codes (https://sqlite.org/rescode.html).
_SQLITE: dict[int, str] = {
    3: "permission_denied",  # SQLITE_PERM
    5: "locked",  # SQLITE_BUSY
    6: "locked",  # SQLITE_LOCKED
    8: "permission_denied",  # SQLITE_READONLY
    9: "timeout",  # SQLITE_INTERRUPT
    14: "database_missing",  # SQLITE_CANTOPEN
    18: "data_error",  # SQLITE_TOOBIG
    19: "integrity_violation",  # SQLITE_CONSTRAINT
    20: "data_error",  # SQLITE_MISMATCH
    23: "permission_denied",  # SQLITE_AUTH
    25: "data_error",  # SQLITE_RANGE
    26: "database_missing",  # SQLITE_NOTADB
}
_SQLITE_SCHEMA_MESSAGES = ("no such table", "no such column")


def translate(exc: BaseException, operation: str) -> DatabaseError:
    """Map a driver, SQLAlchemy, socket or timeout failure to its ``DatabaseError``.

    The caller raises the result ``from exc``. An exception that is already a
    ``DatabaseError`` is returned unchanged.
    """
    if isinstance(exc, DatabaseError):
        return exc
    category, sqlstate = _classify(exc)
    return BY_CATEGORY[category](operation, detail=_detail(exc), sqlstate=sqlstate)


def _classify(exc: BaseException) -> tuple[str, str | None]:
    if isinstance(exc, sa_exc.TimeoutError):  # the pool's, not the server's
        return "pool_exhausted", None
    chain = list(_chain(exc))
    for link in chain:
        sqlstate = getattr(link, "sqlstate", None)
        if isinstance(sqlstate, str) and len(sqlstate) == 5:
            category = _SQLSTATE.get(sqlstate) or _SQLSTATE_CLASS.get(sqlstate[:2], "unknown")
            return category, sqlstate
    for link in chain:
        if isinstance(link, sqlite3.Error):
            return _sqlite_category(link), None
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return "connection_lost", None
    for link in chain:
        os_category = _os_category(link)
        if os_category is not None:
            return os_category, None
    return _sqlalchemy_category(exc), None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, the DBAPI error it wraps, and their causes, each once."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        link = pending.pop(0)
        if link is None or id(link) in seen:
            continue
        seen.add(id(link))
        yield link
        orig = getattr(link, "orig", None)
        pending.extend(
            [orig if isinstance(orig, BaseException) else None, link.__cause__, link.__context__]
        )


def _sqlite_category(exc: sqlite3.Error) -> str:
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and (code & 0xFF) in _SQLITE:
        return _SQLITE[code & 0xFF]
    message = str(exc).lower()
    if any(text in message for text in _SQLITE_SCHEMA_MESSAGES):
        return "schema_missing"
    if isinstance(exc, sqlite3.IntegrityError):
        return "integrity_violation"
    if isinstance(exc, sqlite3.DataError):
        return "data_error"
    return "unknown"


def _os_category(exc: BaseException) -> str | None:
    if isinstance(exc, TimeoutError):  # before OSError: TimeoutError is one
        return "timeout"
    if isinstance(exc, ConnectionResetError | ConnectionAbortedError | BrokenPipeError):
        return "connection_lost"
    if isinstance(exc, ConnectionRefusedError | socket.gaierror):
        return "connection_refused"
    if isinstance(exc, OSError):
        # Unreachable network or host, or asyncio's "Multiple exceptions" when every address
        # of a name failed: the connection was never made.
        return "connection_refused"
    return None


def _sqlalchemy_category(exc: BaseException) -> str:
    if isinstance(exc, sa_exc.IntegrityError):
        return "integrity_violation"
    if isinstance(exc, sa_exc.DataError):
        return "data_error"
    if isinstance(exc, sa_exc.NoSuchTableError):
        return "schema_missing"
    if isinstance(exc, sa_exc.DisconnectionError):
        return "connection_lost"
    if isinstance(exc, sa_exc.StatementError) and not isinstance(exc, sa_exc.DBAPIError):
        # A parameter could not be converted before it reached the driver.
        return "data_error"
    return "unknown"


def _detail(exc: BaseException) -> str:
    """The driver's message, first line only: no SQL, no parameters."""
    orig = getattr(exc, "orig", None)
    source = orig if isinstance(orig, BaseException) else exc
    lines = str(source).strip().splitlines()
    return lines[0][:300] if lines else type(source).__name__
