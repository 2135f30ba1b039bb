"""``Database``: the engine's life, transactions, and the boundary where failures are translated.

Every way into the database (``session``, ``ping``, ``schema_status``) goes through
``_guard``: a driver, SQLAlchemy, socket or timeout failure becomes the matching
``core.db.errors.DatabaseError``, is logged, is reported once to ``on_error(category,
operation)`` (the lead wires that to ``vigil_db_errors_total``) and is raised ``from`` the
original. Nothing outside ``core.db`` sees a SQLAlchemy or driver exception.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

from opentelemetry.trace import NoOpTracer, Span, SpanKind, StatusCode, Tracer
from sqlalchemy import Connection, Engine, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from core.db import migrate
from core.db.engine import (
    begin_on_driver,
    build_engine,
    build_sqlite_writer_engine,
    is_sqlite_memory,
    parse_url,
)
from core.db.errors import DRIVER_ERRORS, DatabaseError, DatabaseLocked, translate
from core.telemetry.logging import get_logger
from core.telemetry.spans import current_span

log = get_logger(__name__)

ErrorHook = Callable[[str, str], None]
T = TypeVar("T")
C = TypeVar("C")  # what connect() makes: an engine, the session factory


@dataclass(frozen=True)
class SchemaStatus:
    current: str | None
    head: str
    up_to_date: bool


class Database:
    """One database: an ``AsyncEngine`` with its pool, created by ``connect``; on a SQLite
    file also a writer thread with its own connection, for ``run_transaction``."""

    def __init__(
        self,
        url: str,
        *,
        connect_timeout_s: float = 5.0,
        on_error: ErrorHook | None = None,
        pool_size: int = 10,
        max_overflow: int = 10,
        pool_timeout_s: float = 5.0,
        statement_timeout_s: float | None = None,
        sqlite_busy_timeout_s: float = 5.0,
        tracer: Tracer | None = None,
    ) -> None:
        self._url = url
        self._parsed_url = parse_url(url)  # ValueError if it cannot parse
        self._dialect = self._parsed_url.get_backend_name()
        self._connect_timeout_s = connect_timeout_s
        self._on_error = on_error
        self._pool_size = pool_size
        self._max_overflow = max_overflow
        self._pool_timeout_s = pool_timeout_s
        self._statement_timeout_s = statement_timeout_s
        self._busy_timeout_s = sqlite_busy_timeout_s
        self._tracer = tracer or NoOpTracer()
        self._engine: AsyncEngine | None = None
        # The same pool and dialect as _engine, with listeners of its own (traced_engine).
        self._traced: AsyncEngine | None = None
        self._writer_engine: Engine | None = None
        self._writer_thread: ThreadPoolExecutor | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self._write_lock = asyncio.Lock()
        self._last_commit: float | None = None  # time.monotonic() of the last success

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._dialect

    @property
    def traced_engine(self) -> Engine:
        """The engine to instrument, whose statements get a span each (sessions, pings,
        ``transaction``); raises if ``connect`` was not called.

        An option engine of the plain one (``execution_options()``): the same pool and
        dialect, but listeners of its own. ``run_transaction`` runs on the plain engine (or
        on SQLite on the writer thread's): any listener of an engine's connection events
        makes SQLAlchemy dispatch four of them for every statement, and the instrumentation
        would add two calls per statement even with its spans suppressed: together about 7%
        of a run's instructions on PostgreSQL (docs/telemetry.md)."""
        return _connected(self._traced).sync_engine

    @property
    def connected(self) -> bool:
        return self._engine is not None

    async def connect(self) -> None:
        """Create the engine and its pool. Connections are opened lazily, on first use:
        call ``ping`` to find out whether the database is reachable. Idempotent."""
        if self._engine is not None:
            return
        self._engine = build_engine(
            self._url,
            connect_timeout_s=self._connect_timeout_s,
            busy_timeout_s=self._busy_timeout_s,
            statement_timeout_s=self._statement_timeout_s,
            pool_size=self._pool_size,
            max_overflow=self._max_overflow,
            pool_timeout_s=self._pool_timeout_s,
        )
        self._traced = self._engine.execution_options()
        self._sessions = async_sessionmaker(self._traced, expire_on_commit=False)
        if self._dialect == "sqlite" and not is_sqlite_memory(self._parsed_url):
            self._writer_engine = build_sqlite_writer_engine(
                self._url, busy_timeout_s=self._busy_timeout_s
            )
            self._writer_thread = ThreadPoolExecutor(1, thread_name_prefix="vigil-sqlite-writer")

    async def close(self) -> None:
        """Close every pooled connection. Idempotent; ``connect`` may be called again."""
        engine, self._engine, self._traced, self._sessions = self._engine, None, None, None
        writer, self._writer_engine = self._writer_engine, None
        thread, self._writer_thread = self._writer_thread, None
        if engine is not None:
            await engine.dispose()
        if writer is not None and thread is not None:
            # pysqlite connections are closed by the thread that uses them.
            await asyncio.wrap_future(thread.submit(writer.dispose))
            thread.shutdown(wait=False)

    async def ping(self, timeout_s: float | None = None) -> None:
        """``SELECT 1`` within ``timeout_s`` (default: the connect timeout).

        Raises ``DatabaseError`` (operation ``"ping"``); a slow answer is ``timeout``.
        """
        engine = _connected(self._traced)
        async with (
            self._guard("ping"),
            asyncio.timeout(timeout_s or self._connect_timeout_s),
            engine.connect() as connection,
        ):
            await connection.execute(text("SELECT 1"))

    async def schema_status(self) -> SchemaStatus:
        """Where the schema is against the packaged migrations."""
        engine = _connected(self._traced)
        head = migrate.head_revision()
        async with self._guard("schema_status"), engine.connect() as connection:
            current = await connection.run_sync(migrate.read_revision)
        return SchemaStatus(current=current, head=head, up_to_date=current == head)

    @asynccontextmanager
    async def session(self, operation: str, *, write: bool = False) -> AsyncIterator[AsyncSession]:
        """An ``AsyncSession`` inside one transaction: committed when the block ends,
        rolled back when it raises. A database failure anywhere in it, commit included, is
        raised as ``DatabaseError`` with this ``operation`` and reported to ``on_error``.

        ``write=True`` declares that the transaction writes. SQLite has one writer at a
        time, so this process queues its writers on a lock instead of letting them poll the
        file lock (busy_timeout backs off in steps of up to 100 ms); waiting longer than the
        busy timeout raises ``DatabaseLocked``. PostgreSQL ignores it.
        """
        sessions = _connected(self._sessions)
        # The writer's turn ends at commit, before the connection goes back to the pool.
        async with (
            self._guard(operation),
            sessions() as session,
            self._writer(operation, write),
            session.begin(),
        ):
            yield session
        self._last_commit = time.monotonic()

    def answered_within(self, seconds: float) -> bool:
        """True when a transaction committed in the last ``seconds``: the database was
        reachable that recently, which spares a busy server a ``ping`` before every run."""
        last = self._last_commit
        return last is not None and time.monotonic() - last <= seconds

    def transaction(
        self, operation: str, *, write: bool = False
    ) -> AbstractAsyncContextManager[AsyncConnection]:
        """``session`` without the ORM: a Core connection inside one transaction, with the
        same commit, rollback, error translation and writer queue. Where the unit of work's
        bookkeeping would cost more than the SQL (a resume's read)."""
        return self._transaction(_connected(self._traced), operation, write)

    @asynccontextmanager
    async def _transaction(
        self, engine: AsyncEngine, operation: str, write: bool
    ) -> AsyncIterator[AsyncConnection]:
        # The writer's turn before a pooled connection: no writer holds one while it queues.
        async with (
            self._guard(operation),
            self._writer(operation, write),
            engine.connect() as connection,
            connection.begin(),
        ):
            yield connection
        self._last_commit = time.monotonic()

    async def run_transaction(
        self,
        operation: str,
        work: Callable[[Connection], T],
        *,
        write: bool = False,
        span: Span | None = None,
        own_span: bool = True,
    ) -> T:
        """``work(connection)`` inside one transaction, with the commit, rollback, error
        translation and writer queue of ``transaction``; what ``work`` returns.

        For the hot paths (every event, every chat, every run's end). On a SQLite file the
        whole transaction is one call to the writer thread, where aiosqlite makes a round
        trip between threads for every statement, ``BEGIN`` and ``COMMIT`` included (about
        0.3 ms each on the bench machine, docs/scaling.md). Elsewhere ``work`` runs on the
        async connection (``run_sync``), so it must not block but on its statements.

        Traced as one span, ``db.transaction {operation}``, instead of a span per statement:
        the statement instrumentation took about 9% of the backend's CPU on these paths
        (docs/telemetry.md). A caller whose own span holds little but this transaction (a
        batch of events) passes it as ``span``, which takes the transaction's attributes
        and status instead of a child: each span costs the SDK some 17 us. A caller that
        records the transaction in a trace of its own passes ``own_span=False``: a span is
        made only when the transaction fails (a chat's admission, which its run's trace
        shows, but a failed admission has no run).
        """
        if span is not None:
            span.set_attributes(self._span_attributes(operation))
            return await self._run_in_span(span, operation, work, write)
        if not own_span:
            return await self._run_traced_if_failed(operation, work, write)
        with current_span(
            self._tracer,
            f"db.transaction {operation}",
            kind=SpanKind.CLIENT,
            attributes=self._span_attributes(operation),
            record_exception=False,
            set_status_on_exception=False,
        ) as own:
            return await self._run_in_span(own, operation, work, write)

    def _span_attributes(self, operation: str) -> dict[str, str]:
        return {"db.system.name": self._dialect, "vigil.db.operation": operation}

    async def _run_in_span(
        self, span: Span, operation: str, work: Callable[[Connection], T], write: bool
    ) -> T:
        try:
            return await self._run_transaction(operation, work, write)
        except DatabaseError as exc:
            _mark_failed(span, exc)
            raise

    async def _run_traced_if_failed(
        self, operation: str, work: Callable[[Connection], T], write: bool
    ) -> T:
        started = time.time_ns()
        try:
            return await self._run_transaction(operation, work, write)
        except DatabaseError as exc:
            failed = self._tracer.start_span(
                f"db.transaction {operation}",
                kind=SpanKind.CLIENT,
                attributes=self._span_attributes(operation),
                start_time=started,
            )
            _mark_failed(failed, exc)
            failed.end()
            raise

    async def _run_transaction(
        self, operation: str, work: Callable[[Connection], T], write: bool
    ) -> T:
        thread, engine = self._writer_thread, self._writer_engine
        if thread is None or engine is None:
            # The plain engine: no statement spans, no listeners (traced_engine).
            async with self._transaction(_connected(self._engine), operation, write) as connection:
                return await connection.run_sync(work)

        def commit() -> T:
            with engine.connect() as connection, connection.begin():
                begin_on_driver(connection)  # the writer's engine has no begin listener
                return work(connection)

        # The caller's context goes along (its span, for anything logged in ``work``).
        context = contextvars.copy_context()
        async with self._guard(operation), self._writer(operation, write):
            result = await _until_done(thread.submit(context.run, commit))
        self._last_commit = time.monotonic()
        return result

    @asynccontextmanager
    async def _writer(self, operation: str, write: bool) -> AsyncIterator[None]:
        if not write or self._dialect != "sqlite":
            yield
            return
        try:
            async with asyncio.timeout(self._busy_timeout_s):
                await self._write_lock.acquire()
        except TimeoutError as exc:
            error = DatabaseLocked(operation, detail="waited for this process's other writers")
            self._report(error)
            raise error from exc
        try:
            yield
        finally:
            self._write_lock.release()

    @asynccontextmanager
    async def _guard(self, operation: str) -> AsyncIterator[None]:
        try:
            yield
        except DRIVER_ERRORS as exc:  # a DatabaseError from further in passes through as is
            error = translate(exc, operation)
            self._report(error)
            raise error from exc

    def _report(self, error: DatabaseError) -> None:
        log.warning(
            "db_error",
            category=error.category,
            operation=error.operation,
            sqlstate=error.sqlstate,
            detail=error.detail,
        )
        if self._on_error is not None:
            self._on_error(error.category, error.operation)


def _connected(part: C | None) -> C:
    """An engine or session factory of a connected ``Database``."""
    if part is None:
        raise RuntimeError("Database.connect() has not been called")
    return part


async def _until_done(job: Future[T]) -> T:
    """``job``'s result. A cancelled caller still waits for a job already running (a thread
    cannot be interrupted): the writer's turn lasts until its transaction has ended."""
    try:
        return await asyncio.wrap_future(job)
    except asyncio.CancelledError:
        if not job.cancel():  # running: let it end; its outcome belongs to nobody now
            ended = asyncio.wrap_future(job)
            await asyncio.wait([ended])
            if not ended.cancelled():
                ended.exception()  # retrieved, so asyncio does not report it as lost
        raise


def _mark_failed(span: Span, error: DatabaseError) -> None:
    span.set_status(StatusCode.ERROR, error.category)
    span.set_attribute("error.type", error.category)
