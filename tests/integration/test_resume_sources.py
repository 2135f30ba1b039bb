"""A resume is served from the event log while it holds the range, and from the database
once the log has trimmed it; ``recovered`` is true either way, since nothing is missing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from core.client import VigilClient
from tests.fixtures.redis import delete_prefix, redis_test_url, unique_prefix
from tests.integration.runs import assert_well_formed_run

QUESTION = "What is 17 * 23?"


@pytest.fixture(params=["in_process", pytest.param("redis", marks=pytest.mark.redis)])
async def log_settings(request: pytest.FixtureRequest) -> AsyncIterator[dict[str, Any]]:
    if request.param == "in_process":
        yield {}
        return
    prefix = unique_prefix()
    yield {"redis_url": redis_test_url(), "redis_key_prefix": prefix}
    await delete_prefix(redis_test_url(), prefix)


async def resume(client: VigilClient, event: dict, last_seq: int) -> tuple[dict, list[dict]]:
    await client.send(
        {
            "type": "resume",
            "thread_id": event["thread_id"],
            "epoch": event["epoch"],
            "last_seq": last_seq,
        }
    )
    resumed = await client.next_frame(10)
    assert resumed["type"] == "resumed", resumed
    replayed = [await client.next_event(10) for _ in range(resumed["replayed"])]
    return resumed, replayed


async def test_recent_events_come_from_the_log_and_trimmed_ones_from_the_database(
    start_server, log_settings
):
    server = await start_server(event_log_max_events=3, **log_settings)
    async with VigilClient.connect(server.ws_url, server.token("alice")) as client:
        events = (await client.run(QUESTION)).events
    assert_well_formed_run(events)
    assert len(events) > 3
    sources = "vigil_resume_replays_total"

    async with VigilClient.connect(server.ws_url, server.token("alice")) as client:
        recent, from_log = await resume(client, events[0], len(events) - 2)
    async with VigilClient.connect(server.ws_url, server.token("alice")) as client:
        everything, from_database = await resume(client, events[0], 0)

    assert recent["recovered"] and from_log == events[-2:]
    assert everything["recovered"] and from_database == events
    assert server.metric(sources, {"source": "log"}) == 1
    assert server.metric(sources, {"source": "database"}) == 1


async def test_a_thread_forgotten_to_keep_the_log_within_its_byte_bound_resumes_from_the_database(
    start_server,
):
    server = await start_server(event_log_max_bytes=4096)
    async with VigilClient.connect(server.ws_url, server.token("alice")) as client:
        first = (await client.run(QUESTION)).events
        await client.run(QUESTION)  # Another thread: its events push the first out of the log.
    assert_well_formed_run(first)

    async with VigilClient.connect(server.ws_url, server.token("alice")) as client:
        resumed, replayed = await resume(client, first[0], 0)

    assert resumed["recovered"] and replayed == first
    assert server.metric("vigil_eventlog_evictions_total", {"reason": "bytes"}) >= 1
    assert server.metric("vigil_resume_replays_total", {"source": "database"}) == 1
