"""SIGTERM on a real backend process: it drains instead of vanishing.

Readiness turns false and new handshakes get 503 while runs in flight finish; open
connections are closed with 1012; a run that outlives the grace period ends with
``agent_error`` reason ``shutdown`` and ``agent_completed`` status ``failed``.
"""

from __future__ import annotations

import asyncio
import signal

import httpx
import pytest

from core.client import HandshakeRefused, VigilClient
from core.db.database import Database
from core.db.repository import Repository
from tests.fixtures.servers import BackendProcess, spawn_backend, stop_backend
from tests.integration.runs import assert_well_formed_run

pytestmark = pytest.mark.slow

QUESTION = "What is 17 * 23?"


async def stored_run_events(database_url: str, user: str, thread_id: str) -> list[dict]:
    database = Database(database_url)
    await database.connect()
    try:
        records = await Repository(database).list_events(user, thread_id, 0, 100)
    finally:
        await database.close()
    assert records is not None
    return [record.payload for record in records]


async def wait_for_exit(backend: BackendProcess, timeout_s: float) -> int:
    return await asyncio.to_thread(backend.process.wait, timeout_s)


async def readiness(backend: BackendProcess) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.get(f"{backend.base_url}/readyz", timeout=5)


async def test_sigterm_refuses_newcomers_moves_connections_and_lets_the_run_finish(sqlite_url):
    backend = spawn_backend(
        sqlite_url, {"VIGIL_OFFLINE_LATENCY_S": "1.5", "VIGIL_SHUTDOWN_GRACE_S": "30"}
    )
    try:
        assert (await readiness(backend)).status_code == 200
        client = await VigilClient.open(backend.ws_url, backend.token("alice"))
        accepted = await client.chat(QUESTION)
        assert (await client.next_event(10))["type"] == "agent_started"

        backend.process.send_signal(signal.SIGTERM)

        await asyncio.wait_for(client.websocket.wait_closed(), 10)
        assert client.websocket.close_code == 1012
        ready = await readiness(backend)
        assert ready.status_code == 503
        assert ready.json()["checks"]["lifecycle"]["state"] == "draining"
        with pytest.raises(HandshakeRefused) as refused:
            await VigilClient.open(backend.ws_url, backend.token("bob"))
        assert (refused.value.status, refused.value.reason) == (503, "not_ready")
        await client.close()

        assert await wait_for_exit(backend, 60) == 0
    finally:
        stop_backend(backend)

    events = await stored_run_events(sqlite_url, "alice", accepted["thread_id"])
    assert_well_formed_run(events)
    assert events[-1]["data"]["status"] == "completed"
    assert "agent_error" not in [event["type"] for event in events]


async def test_a_run_that_outlives_the_grace_period_ends_with_shutdown(sqlite_url):
    backend = spawn_backend(
        sqlite_url, {"VIGIL_OFFLINE_LATENCY_S": "10", "VIGIL_SHUTDOWN_GRACE_S": "1"}
    )
    try:
        async with VigilClient.connect(backend.ws_url, backend.token("alice")) as client:
            accepted = await client.chat(QUESTION)
            assert (await client.next_event(10))["type"] == "agent_started"
            backend.process.send_signal(signal.SIGTERM)
            assert await wait_for_exit(backend, 60) == 0
    finally:
        stop_backend(backend)

    events = await stored_run_events(sqlite_url, "alice", accepted["thread_id"])
    types = [event["type"] for event in events]
    assert types[-2:] == ["agent_error", "agent_completed"], types
    assert events[-2]["data"]["reason"] == "shutdown"
    assert events[-2]["data"]["phase"] == "model_call"
    assert events[-1]["data"]["status"] == "failed"
