"""The PostgreSQL server's own commit latency while a load runs beside it.

A run's chat-to-completed time on PostgreSQL includes at least two commits, each waiting for
the server's WAL flush (``synchronous_commit=on``, the default). When the disk stalls a
flush, every commit in flight waits with it, and so does every run. The probe commits one
row at a time on a connection of its own, next to the load, so the bench can show whether a
tail in the runs' latency was the server's (its commits stalled too) or the backend's.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

import asyncpg
from sqlalchemy.engine import make_url

from core.loadgen.stats import percentile

TABLE = "bench_commit_probe"
STALL_MS = 100.0


@dataclass
class CommitLatencies:
    latencies_ms: list[float] = field(default_factory=list)

    def describe(self) -> str:
        """p50 / p99 / max (ms), and how many commits took over ``STALL_MS``."""
        values = self.latencies_ms
        if not values:
            return "no commits"
        p50, p99 = percentile(values, 50.0) or 0.0, percentile(values, 99.0) or 0.0
        stalls = sum(1 for value in values if value > STALL_MS)
        return (
            f"{p50:.2f} / {p99:.2f} / {max(values):.1f} ms over {len(values):,} commits; "
            f"{stalls} over {STALL_MS:g} ms"
        )


class CommitProbe:
    """Inserts a row (one transaction, one WAL flush) every ``interval_s`` from a thread of
    its own, until the ``with`` block ends; ``result`` holds each commit's latency."""

    def __init__(self, database_url: str, interval_s: float = 0.02) -> None:
        url = make_url(database_url).set(drivername="postgresql")
        self._dsn = url.render_as_string(hide_password=False)
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="commit-probe", daemon=True)
        self._failure: BaseException | None = None
        self.result = CommitLatencies()

    def __enter__(self) -> CommitProbe:
        self._thread.start()
        self._ready.wait(30)
        self._raise_failure()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(30)
        self._raise_failure()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise RuntimeError("the commit probe failed") from self._failure

    def _run(self) -> None:
        try:
            asyncio.run(self._probe())
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            self._failure = exc
        finally:
            self._ready.set()

    async def _probe(self) -> None:
        connection = await asyncpg.connect(self._dsn)
        try:
            await connection.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (at double precision)")
            self._ready.set()
            while not self._stop.is_set():
                began = time.perf_counter()
                await connection.execute(f"INSERT INTO {TABLE} VALUES ($1)", began)
                self.result.latencies_ms.append((time.perf_counter() - began) * 1000)
                await asyncio.sleep(self._interval_s)
            await connection.execute(f"DROP TABLE {TABLE}")
        finally:
            await connection.close()
