"""Concurrent chat sessions on the offline model (docs/benchmarks.md, "sessions"): runs/s,
chat-to-completed p50/p99 and the backend's CPU per run, at 100 and at 1,000 concurrent
users, measured with `vigil loadgen` in its own process against a `vigil serve` process, on
the embedded default (SQLite), on PostgreSQL (the machine's, a fresh database) and on the
production configuration: PostgreSQL with the Redis Streams event log (the machine's Redis)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid

import pytest
from sqlalchemy.engine import make_url

from tests.bench.commit_probe import CommitProbe
from tests.bench.common import LOADGEN, backend, cpu_seconds, run_loadgen, scaled
from tests.bench.report import Figure, record
from tests.fixtures.redis import delete_prefix, redis_test_url

pytestmark = pytest.mark.bench

# (users, runs each, think time s): back to back (the backend saturated, so latency is the
# queue: users / throughput), and users pausing about 5 s before each chat, as people do.
SIZES = ((100, scaled(5), 0.0), (100, scaled(5), 5.0), (1000, scaled(1), 0.0))
P99_TARGET_MS = 50.0


def judged(users: int, think_s: float) -> bool:
    """The p99 target is for 100 concurrent users, people who pause between chats. A closed
    loop with no pause keeps every user's chat in flight: it measures capacity, and its
    latency is the queue (users / runs/s, Little's law) whatever the backend does."""
    return users == 100 and think_s > 0


def measure(database: str, url: str, **env: str) -> list[Figure]:
    figures: list[Figure] = []
    on_postgres = make_url(url).get_backend_name() == "postgresql"
    with backend(url, VIGIL_MAX_RUNS_TOTAL="2000", **env) as vigil:
        run_loadgen(vigil.ws_url, 10, 2)  # warm-up
        for users, runs, think_s in SIZES:
            before = cpu_seconds(vigil.pid)
            with contextlib.ExitStack() as beside:
                commits = beside.enter_context(CommitProbe(url)).result if on_postgres else None
                summary = run_loadgen(vigil.ws_url, users, runs, think_s=think_s)
            cpu_s = cpu_seconds(vigil.pid) - before
            print(database, json.dumps(summary, indent=2))
            latency = summary["run_latency_ms"]
            done = summary["runs_completed"]
            p99 = latency["p99"]
            target = judged(users, think_s)
            at = f"{database}, {users} users x {runs} runs"
            if think_s:
                at += f", thinking {think_s:g} s"
            figures += [
                Figure(f"{at}: runs completed / not / errors",
                       f"{done} / {summary['runs_not_completed']} / "
                       f"{sum(summary['errors'].values())} {summary['errors'] or ''}"),
                Figure(f"{at}: runs/s, events/s",
                       f"{summary['runs_per_s']:.1f}, {summary['events_per_s']:.1f}"),
                Figure(f"{at}: chat-to-completed p50 / p99 (ms)",
                       f"{latency['p50']} / {p99}",
                       f"p99 < {P99_TARGET_MS:g} ms" if target else "",
                       (p99 is not None and p99 < P99_TARGET_MS) if target else None),
                *([] if commits is None else [
                    Figure(f"{at}: the server's own commits meanwhile, p50 / p99 / max",
                           commits.describe())]),
                *([] if think_s else [
                    Figure(f"{at}: the queue, users / runs/s (ms)",
                           f"{users / summary['runs_per_s'] * 1000:.0f}")]),
                Figure(f"{at}: emit-to-receive p50 / p99 (ms)",
                       f"{summary['delivery_latency_ms']['p50']} / "
                       f"{summary['delivery_latency_ms']['p99']}"),
                Figure(f"{at}: backend CPU per completed run (ms)",
                       f"{cpu_s / max(done, 1) * 1000:.1f}"),
            ]  # fmt: skip
            assert done > 0
    return figures


def test_concurrent_chat_sessions(sqlite_url, postgres_session_url):
    figures = measure("SQLite", sqlite_url) + measure("PostgreSQL", postgres_session_url)
    redis_url, prefix = redis_test_url(), f"vigil-bench:{uuid.uuid4().hex[:8]}:"
    try:
        figures += measure(
            "PostgreSQL + Redis",
            postgres_session_url,
            VIGIL_REDIS_URL=redis_url,
            VIGIL_REDIS_KEY_PREFIX=prefix,
        )
    finally:
        asyncio.run(delete_prefix(redis_url, prefix))
    commands = [
        LOADGEN.format(url="URL", users=users, runs=runs) + (f" --think {t:g}" if t else "")
        for users, runs, t in SIZES
    ]
    record(
        "sessions",
        "2. Concurrent chat sessions on the offline model",
        "; ".join(commands) + " (tests/bench/test_sessions.py)",
        figures,
        notes="Backend: `vigil serve`, VIGIL_MAX_RUNS_TOTAL=2000 (the default 500 would refuse "
        "part of 1,000 simultaneous runs) and the frame rate limit raised; everything else "
        "default (run timeout 30 s). Each user runs its chats one after another on one thread, "
        "back to back or pausing before each (uniformly 0 to 10 s with --think 5). "
        "The p99 target is judged at 100 users pausing between chats: back to back, every "
        "user always has a chat in flight, so that row measures capacity and its latency is "
        "the queue (users / runs/s, Little's law), shown beside it. "
        "The load generator runs in its own process on the same two cores, so it competes with "
        "the backend; both settle their heap (core/heap.py: the startup heap frozen, young "
        "collections after 50,000 new objects), so neither stalls on a full collection of its "
        "imports. SQLite is the embedded default (one "
        "writer at a time, the hot paths on the writer thread); PostgreSQL is the machine's "
        "server, a fresh migrated database, shared by the last two; PostgreSQL + Redis is the "
        f"production configuration, the event log in Redis Streams ({redis_url}, the machine's, "
        "under a key prefix of the bench's own, deleted afterwards). On PostgreSQL a probe "
        "beside the load commits one row every 20 ms on a connection of its own "
        "(tests/bench/commit_probe.py): each of a run's commits waits for the server's WAL "
        "flush, so a stall of the flush holds up every run in flight, and the probe's "
        "commits show it.",
    )
