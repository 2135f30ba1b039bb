"""SQLite transactions through aiosqlite against the writer thread (docs/benchmarks.md,
"SQLite transactions"; docs/scaling.md, "The SQLite writer thread").

The same four-statement transaction (the shape of a batch of events: lock a row, bump a
counter, insert, update), run on one database file in one process, alternately:
- through aiosqlite, one round trip between threads per statement (``Database.transaction``
  with the work run on its connection, as the hot paths ran before the writer thread, and as
  every other transaction still runs);
- as one call to the writer thread (``Database.run_transaction``).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import Connection, text

from core.db.database import Database
from tests.bench.common import scaled
from tests.bench.report import Figure, record

pytestmark = pytest.mark.bench

TRANSACTIONS = scaled(2000, 100)
ROUNDS = 5


def work(connection: Connection) -> None:
    connection.execute(text("SELECT v FROM bench WHERE id = 1")).one()
    connection.execute(text("UPDATE bench SET v = v + 1 WHERE id = 1"))
    connection.execute(text("INSERT INTO bench_log (v) VALUES (1)"))
    connection.execute(text("UPDATE bench SET w = w + 1 WHERE id = 1"))


async def per_transaction(run: Callable[[], Awaitable[None]]) -> tuple[float, float]:
    """(wall, CPU) seconds per transaction over TRANSACTIONS of them."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(TRANSACTIONS):
        await run()
    return (
        (time.perf_counter() - wall) / TRANSACTIONS,
        (time.process_time() - cpu) / TRANSACTIONS,
    )


async def test_one_call_to_the_writer_thread_against_aiosqlite(tmp_path):
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'bench.db'}")
    await db.connect()
    try:
        async with db.transaction("setup", write=True) as connection:
            await connection.execute(
                text("CREATE TABLE bench (id INTEGER PRIMARY KEY, v INTEGER, w INTEGER)")
            )
            await connection.execute(
                text("CREATE TABLE bench_log (id INTEGER PRIMARY KEY, v INTEGER)")
            )
            await connection.execute(text("INSERT INTO bench VALUES (1, 0, 0)"))

        async def through_aiosqlite() -> None:
            async with db.transaction("bench", write=True) as connection:
                await connection.run_sync(work)

        async def writer_thread() -> None:
            await db.run_transaction("bench", work, write=True)

        await per_transaction(through_aiosqlite)  # warm-up: caches, the file's first pages
        await per_transaction(writer_thread)
        figures: dict[str, list[tuple[float, float]]] = {"aiosqlite": [], "writer": []}
        for _ in range(ROUNDS):
            figures["aiosqlite"].append(await per_transaction(through_aiosqlite))
            figures["writer"].append(await per_transaction(writer_thread))
        async with db.transaction("count") as connection:
            stored = await connection.scalar(text("SELECT v FROM bench WHERE id = 1"))
    finally:
        await db.close()
    assert stored == (2 + 2 * ROUNDS) * TRANSACTIONS  # every transaction committed
    wall = {k: statistics.median(w for w, _ in v) for k, v in figures.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in figures.items()}
    speedup = wall["aiosqlite"] / wall["writer"]
    record(
        "sqlite",
        "SQLite transactions: aiosqlite against the writer thread",
        "make bench (tests/bench/test_sqlite_transactions.py)",
        [
            Figure(
                "through aiosqlite, per transaction: wall / CPU (us)",
                f"{wall['aiosqlite'] * 1e6:,.0f} / {cpu['aiosqlite'] * 1e6:,.0f}",
            ),
            Figure(
                "one call to the writer thread, per transaction: wall / CPU (us)",
                f"{wall['writer'] * 1e6:,.0f} / {cpu['writer'] * 1e6:,.0f}",
            ),
            Figure("writer thread speed-up (wall)", f"{speedup:.1f}x"),
        ],
        notes=f"{TRANSACTIONS} transactions of four statements (SELECT, UPDATE, INSERT, "
        f"UPDATE) per round, {ROUNDS} alternating rounds after a warm-up, medians; one "
        "process, one database file (WAL, synchronous NORMAL), nothing else running in it. "
        "CPU is the process's, both threads.",
    )
    assert speedup > 1.0, wall
