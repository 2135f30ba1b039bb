"""Faults injected into real services, each a private instance the test starts and stops
(tests/reliability/services.py): PostgreSQL stopped mid-run, Redis killed and restarted
mid-run, and a model too slow for the run timeout."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from core.client import VigilClient
from core.db import migrate
from tests.integration.runs import assert_well_formed_run
from tests.reliability.services import private_postgres, private_redis

pytestmark = pytest.mark.slow


async def events_of_run(client: VigilClient, run_id: str, timeout_s: float) -> list[dict]:
    """Every event of one run up to its agent_completed; TimeoutError if the run goes
    silent for ``timeout_s`` (a hang)."""
    events: list[dict] = []
    while not events or events[-1]["type"] != "agent_completed":
        event = await client.next_event(timeout_s)
        if event["run_id"] == run_id:
            events.append(event)
    return events


async def readiness(base_url: str) -> tuple[int, dict]:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"{base_url}/readyz")
    return response.status_code, response.json()


async def ready_again(base_url: str, attempts: int = 150) -> dict:
    """Poll /readyz until it says ready (what a load balancer does)."""
    for _ in range(attempts):
        status, body = await readiness(base_url)
        if status == 200:
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"never ready again: {body}")


async def event_log_healthy(base_url: str, attempts: int = 200) -> None:
    for _ in range(attempts):
        _, body = await readiness(base_url)
        if not body["checks"]["event_log"]["degraded"]:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the event log never recovered: {body}")


async def test_postgres_stopped_shows_in_readiness_refuses_chats_and_recovers(start_server):
    with private_postgres() as postgres:
        await asyncio.to_thread(migrate.upgrade, postgres.url)
        server = await start_server(database_url=postgres.url, db_connect_timeout_s=2.0)
        async with VigilClient.connect(server.ws_url, server.token("alice")) as client:
            before = await client.run("What is 2 + 2?")
            assert_well_formed_run(before.events)
            thread_id = before.accepted["thread_id"]
            await asyncio.to_thread(postgres.stop, "immediate")
            status, body = await readiness(server.base_url)
            assert status == 503 and body["checks"]["database"]["ok"] is False, body
            category = body["checks"]["database"]["category"]
            # A chat while the database is down is answered at once, naming the category.
            await client.send(
                {"type": "chat", "id": "during", "thread_id": thread_id, "text": "hi"}
            )
            refused = await client.next_frame(15)
            assert (refused["type"], refused["code"], refused["ref"]) == (
                "error",
                "unavailable",
                "during",
            )
            assert category in refused["message"]
            await asyncio.to_thread(postgres.start)
            await ready_again(server.base_url)
            after = await client.run("What is 4 + 4?", thread_id, timeout=30)
        assert_well_formed_run(after.events)
        assert after.completed["data"]["status"] == "completed"
        # The thread goes on where it was: no seq was burnt or reused by the outage.
        assert after.events[0]["seq"] == before.events[-1]["seq"] + 1
        assert server.metric("vigil_db_errors_total", {"category": category, "operation": "ping"})
        print(f"\npostgres stopped: readiness {category}, chat refused, recovered")


async def test_a_run_in_flight_when_postgres_stops_ends_with_agent_error_once_it_is_back(
    start_server,
):
    """The run's ending is stored before it is sent (its seq comes from the database), so
    it waits for the database; before the fix it was dropped and the run went silent for
    good (terminal_event_not_persisted)."""
    with private_postgres() as postgres:
        await asyncio.to_thread(migrate.upgrade, postgres.url)
        server = await start_server(
            database_url=postgres.url, offline_latency_s=1.0, db_connect_timeout_s=2.0
        )
        async with VigilClient.connect(server.ws_url, server.token("alice")) as client:
            accepted = await client.chat("What is 3 + 3?")
            started = await client.next_event(10)
            assert started["type"] == "agent_started"
            await asyncio.to_thread(postgres.stop, "immediate")  # the model is thinking
            await eventually_logged(server, "terminal_event_retrying")
            await asyncio.to_thread(postgres.start)
            events = await events_of_run(client, accepted["run_id"], timeout_s=30)
            after = await client.run("What is 4 + 4?", accepted["thread_id"], timeout=30)
        error = next(e for e in events if e["type"] == "agent_error")
        assert error["data"]["reason"].startswith("database_"), error
        assert events[-1]["data"]["status"] == "failed"
        assert_well_formed_run([started, *events])
        assert_well_formed_run(after.events)
        seqs = [e["seq"] for e in [started, *events, *after.events]]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        assert "terminal_event_not_persisted" not in server.logs.getvalue()
        print(f"\npostgres stopped mid-run: the run ended with {error['data']['reason']}")


async def eventually_logged(server, event: str, attempts: int = 200) -> None:
    for _ in range(attempts):
        if f'"event": "{event}"' in server.logs.getvalue():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{event} never logged")


async def test_redis_killed_and_restarted_mid_run_loses_nothing(start_server):
    with private_redis() as redis_server:
        server = await start_server(
            redis_url=redis_server.url,
            redis_key_prefix=f"vigil-rel:{uuid.uuid4().hex[:8]}:",
            offline_latency_s=0.5,
        )
        async with VigilClient.connect(server.ws_url, server.token("alice")) as client:
            first = await client.run("What is 2 + 2?")
            thread_id = first.accepted["thread_id"]
            accepted = await client.chat("What is 5 * 5?", thread_id)
            started = await client.next_event(10)
            assert started["type"] == "agent_started"
            await asyncio.to_thread(redis_server.stop)  # SIGKILL, nothing saved
            during = [started, *await events_of_run(client, accepted["run_id"], timeout_s=20)]
            # Readiness shows the log degraded but stays 200 by design: every replica shares
            # the one Redis, and events are still stored and sent without it.
            status, body = await readiness(server.base_url)
            log_state = body["checks"]["event_log"]
            assert (status, log_state["state"], log_state["degraded"]) == (
                200,
                "unreachable",
                True,
            ), body
            await asyncio.to_thread(redis_server.start)  # empty: the log was lost
            await event_log_healthy(server.base_url)
            after = await client.run("What is 6 * 6?", thread_id, timeout=30)
        for events in (first.events, during, after.events):
            assert_well_formed_run(events)
        assert during[-1]["data"]["status"] == "completed"
        seqs = [e["seq"] for e in first.events + during + after.events]
        assert seqs == list(range(1, len(seqs) + 1))  # nothing lost, nothing twice
        # A client that missed all of it resumes from the database: the log forgot.
        async with VigilClient.connect(server.ws_url, server.token("alice")) as late:
            await late.send(
                {"type": "resume", "thread_id": thread_id, "epoch": first.events[0]["epoch"],
                 "last_seq": 0}
            )  # fmt: skip
            replayed = [await late.next_event(10) for _ in seqs]
            resumed = await late.next_frame(10)
        assert [e["seq"] for e in replayed] == seqs
        assert (resumed["type"], resumed["recovered"]) == ("resumed", True)
        assert (
            server.metric(
                "vigil_eventlog_errors_total", {"backend": "redis", "operation": "append"}
            )
            >= 1
        )
        assert server.metric("vigil_events_undelivered_total") == 0
        print(f"\nredis killed mid-run and restarted: {len(seqs)} events, 0 lost")


async def test_a_slow_model_times_out_naming_the_phase_and_opens_the_circuit(start_server):
    server = await start_server(
        offline_latency_s=5.0,
        model_call_timeout_s=0.3,
        circuit_failure_threshold=2,
        circuit_reset_timeout_s=60,
    )
    async with (
        VigilClient.connect(server.ws_url, server.token("alice")) as alice,
        VigilClient.connect(server.ws_url, server.token("bob")) as bob,
    ):
        for _ in range(2):
            accepted = await alice.chat("What is 7 * 7?")
            events = await events_of_run(alice, accepted["run_id"], timeout_s=10)
            error = next(e for e in events if e["type"] == "agent_error")
            assert (error["data"]["reason"], error["data"]["phase"]) == (
                "phase_timeout",
                "model_call",
            )
            assert events[-1]["data"]["status"] == "timeout"
        _, body = await readiness(server.base_url)
        assert body["checks"]["provider"]["circuit"] == "open"
        # While it is open, preflight refuses at once, for every user.
        accepted = await bob.chat("What is 8 * 8?")
        refused = await events_of_run(bob, accepted["run_id"], timeout_s=10)
    assert [e["type"] for e in refused] == ["agent_error", "agent_completed"]
    assert (refused[0]["data"]["reason"], refused[0]["data"]["phase"]) == (
        "circuit_open",
        "preflight",
    )
    assert server.metric("vigil_runs_total", {"status": "timeout"}) == 2


async def test_a_run_longer_than_the_run_timeout_ends_naming_the_phase(start_server):
    server = await start_server(offline_latency_s=5.0, run_timeout_s=0.5)
    async with VigilClient.connect(server.ws_url, server.token("alice")) as client:
        accepted = await client.chat("What is 9 * 9?")
        events = await events_of_run(client, accepted["run_id"], timeout_s=10)
    error = next(e for e in events if e["type"] == "agent_error")
    assert (error["data"]["reason"], error["data"]["phase"]) == ("run_timeout", "model_call")
    assert events[-1]["data"]["status"] == "timeout"
