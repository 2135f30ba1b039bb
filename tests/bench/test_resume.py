"""Resume (docs/benchmarks.md, "resume"): the time from a ``resume`` frame to its ``resumed``
reply when 1,000 events were missed, with every event received, from each replay source:
the in-process event log, the Redis Streams log (the machine's Redis, a key prefix of its
own) and the database (a log too short to vouch for the range); and the backend's memory."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import uuid

import pytest
from websockets.asyncio.client import connect

from core.client import VigilClient
from tests.bench.common import backend, fresh_copy, metric_samples, rss_bytes
from tests.bench.report import Figure, record
from tests.fixtures.redis import delete_prefix, redis_test_url

pytestmark = pytest.mark.bench

MISSED = 1000
REPEATS = 7
TARGET_MS = 100.0


async def fill_thread(ws_url: str, token: str, events: int) -> tuple[str, str, int]:
    """Run chats on one thread until it holds at least ``events`` events."""
    async with VigilClient.connect(ws_url, token) as client:
        thread_id = None
        last = None
        count = 0
        while count < events:
            result = await client.run("What is 17 * 23?", thread_id, timeout=60)
            thread_id = result.accepted["thread_id"]
            last = result.events[-1]
            count = last["seq"]
    assert thread_id is not None and last is not None
    return thread_id, last["epoch"], last["seq"]


async def timed_resume(ws_url: str, token: str, thread_id: str, epoch: str, last: int) -> float:
    async with connect(
        ws_url, subprotocols=["vigil.v1", f"bearer.{token}"], max_size=2**22, ping_interval=None
    ) as ws:
        assert json.loads(await ws.recv())["type"] == "connection_ready"
        after = last - MISSED
        began = time.perf_counter()
        frame = {"type": "resume", "thread_id": thread_id, "epoch": epoch, "last_seq": after}
        await ws.send(json.dumps(frame))
        seqs = []
        while True:
            reply = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if reply["type"] == "resumed":
                elapsed = time.perf_counter() - began
                break
            if reply["type"] != "ping":
                seqs.append(reply["seq"])
        assert reply["recovered"] is True and reply["replayed"] == MISSED, reply
        assert seqs == list(range(after + 1, last + 1))
        await ws.send(json.dumps({"type": "ack", "thread_id": thread_id, "seq": last}))
        return elapsed


async def measure(name: str, url: str, env: dict[str, str], source: str) -> list[Figure]:
    with backend(url, **env) as vigil:
        token = vigil.token(f"resume-{uuid.uuid4().hex[:6]}")
        thread_id, epoch, last = await fill_thread(vigil.ws_url, token, MISSED + 10)
        rss_before = rss_bytes(vigil.pid)
        times = [
            await timed_resume(vigil.ws_url, token, thread_id, epoch, last) for _ in range(REPEATS)
        ]
        rss_after = rss_bytes(vigil.pid)
        sources = {
            dict(labels)["source"]: value
            for (metric, labels), value in metric_samples(vigil.base_url).items()
            if metric == "vigil_resume_replays_total"
        }
    median_ms = statistics.median(times) * 1000
    assert sources.get(source) == REPEATS, sources
    return [
        Figure(f"{name}: resume of {MISSED:,} missed events, median of {REPEATS} (ms)",
               f"{median_ms:.1f} (min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f})",
               f"< {TARGET_MS:g} ms", median_ms < TARGET_MS),
        Figure(f"{name}: backend RSS before / after the resumes",
               f"{rss_before / 2**20:.1f} / {rss_after / 2**20:.1f} MiB"),
    ]  # fmt: skip


async def test_resume_of_a_thousand_missed_events(sqlite_template, tmp_path):
    redis_url = redis_test_url()
    prefix = f"vigil-bench:{uuid.uuid4().hex[:8]}:"
    figures = await measure(
        "in-process log", fresh_copy(sqlite_template, tmp_path / "a.db"), {}, "log"
    )
    try:
        figures += await measure(
            "Redis Streams log",
            fresh_copy(sqlite_template, tmp_path / "b.db"),
            {"VIGIL_REDIS_URL": redis_url, "VIGIL_REDIS_KEY_PREFIX": prefix},
            "log",
        )
    finally:
        await delete_prefix(redis_url, prefix)
    figures += await measure(
        "database (log holds 100)",
        fresh_copy(sqlite_template, tmp_path / "c.db"),
        {"VIGIL_EVENT_LOG_MAX_EVENTS": "100"},
        "database",
    )
    record(
        "resume",
        "5. Resume after 1,000 missed events",
        "make bench (tests/bench/test_resume.py)",
        figures,
        notes="One `vigil serve` per source (SQLite). A thread is filled with offline-agent runs, "
        f"then a fresh connection sends `resume` with last_seq {MISSED:,} behind the newest "
        "event; the time runs from sending `resume` to receiving `resumed` (recovered, every "
        f"event in order). Redis: {redis_url} (the machine's), a key prefix of the bench's own, "
        "deleted afterwards. The database source: VIGIL_EVENT_LOG_MAX_EVENTS=100, so the log "
        "cannot vouch for the range.",
    )
