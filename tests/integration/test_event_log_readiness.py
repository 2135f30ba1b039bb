"""``/readyz`` shows the event log: in-process by default, Redis (and its fan-out) when
``VIGIL_REDIS_URL`` is set; an unreachable Redis degrades, it does not take traffic away."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from core.eventlog import RedisStreamEventLog
from tests.fixtures.redis import delete_prefix, redis_test_url, unique_prefix
from tests.integration.runs import eventually


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    prefix = unique_prefix()
    yield prefix
    await delete_prefix(redis_test_url(), prefix)


async def event_log_state(base_url: str) -> tuple[int, dict]:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{base_url}/readyz")
    return response.status_code, response.json()["checks"]["event_log"]


async def test_the_embedded_default_is_the_in_process_log(live_server):
    status, state = await event_log_state(live_server.base_url)

    assert status == 200
    assert state["backend"] == "in_process" and state["ok"]


@pytest.mark.redis
async def test_with_a_redis_url_readiness_shows_redis_connected_and_subscribed(
    start_server, redis_prefix
):
    server = await start_server(redis_url=redis_test_url(), redis_key_prefix=redis_prefix)
    log = server.services.replica.event_log
    assert isinstance(log, RedisStreamEventLog)
    await eventually(log.subscribed.is_set, 10)

    status, state = await event_log_state(server.base_url)

    assert status == 200
    assert state == {
        "backend": "redis",
        "state": "connected",
        "fanout": "subscribed",
        "ok": True,
        "degraded": False,
    }


async def test_an_unreachable_redis_is_shown_degraded_without_failing_readiness(
    start_server, closed_port
):
    server = await start_server(redis_url=f"redis://127.0.0.1:{closed_port}/0")
    failures = {"backend": "redis", "operation": "subscribe"}
    await eventually(lambda: server.metric("vigil_eventlog_errors_total", failures) >= 1, 10)

    status, state = await event_log_state(server.base_url)

    assert status == 200
    assert state["state"] == "unreachable" and state["degraded"]
    assert state["fanout"] == "resubscribing"
