"""Two backend processes sharing the machine's Redis and PostgreSQL.

- A client cut off from replica A resumes on replica B without losing an event: B replays
  from the shared Redis log, and the run still going on A reaches B through the fan-out.
- Replica A killed with SIGKILL mid-run: B ends A's run with ``agent_error`` reason
  ``replica_lost`` and ``agent_completed`` status ``failed`` within the lease bound.
- Replica A sent SIGTERM mid-run: its client is moved (1012) and the run, finished on A
  during the drain, arrives on B.

The module has its own PostgreSQL database and its own Redis key prefix.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest

from core.client import VigilClient
from core.db import migrate
from core.db.database import Database
from core.db.repository import Repository
from tests.fixtures.databases import PostgresServer
from tests.fixtures.redis import delete_prefix, redis_test_url, unique_prefix
from tests.fixtures.servers import BackendProcess, spawn_backend, stop_backend
from tests.integration.runs import assert_well_formed_run

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

QUESTION = "What is 17 * 23?"
LEASE_TTL_S = 6.0
LEASE_SWEEP_S = 2.0
DEADLINE_S = 30.0


@pytest.fixture(scope="module")
def module_database(postgres_server: PostgresServer) -> str:
    """A fresh, migrated PostgreSQL database for this module (dropped with the session)."""
    url = postgres_server.url(asyncio.run(postgres_server.create_database()))
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="module")
def redis_prefix() -> Iterator[str]:
    prefix = unique_prefix()
    yield prefix
    asyncio.run(delete_prefix(redis_test_url(), prefix))


@pytest.fixture
def start_replica(module_database: str, redis_prefix: str) -> Iterator:
    started: list[BackendProcess] = []

    def start(name: str, latency_s: float, **env: str) -> BackendProcess:
        backend = spawn_backend(
            module_database,
            {
                "VIGIL_REDIS_URL": redis_test_url(),
                "VIGIL_REDIS_KEY_PREFIX": redis_prefix,
                "VIGIL_REPLICA_ID": name,
                "VIGIL_OFFLINE_LATENCY_S": str(latency_s),
                "VIGIL_LEASE_TTL_S": str(LEASE_TTL_S),
                "VIGIL_LEASE_RENEW_INTERVAL_S": "2",
                "VIGIL_LEASE_SWEEP_INTERVAL_S": str(LEASE_SWEEP_S),
                **env,
            },
        )
        started.append(backend)
        return backend

    yield start
    for backend in started:
        stop_backend(backend)


async def fanout_ready(backend: BackendProcess) -> None:
    """Wait until the replica's Redis subscription is up (its /readyz says so)."""
    async with httpx.AsyncClient() as http:
        for _ in range(300):
            body = (await http.get(f"{backend.base_url}/readyz", timeout=5)).json()
            if body["checks"]["event_log"].get("fanout") == "subscribed":
                assert body["checks"]["event_log"]["backend"] == "redis"
                return
            await asyncio.sleep(0.1)
    raise AssertionError("the replica never subscribed to the fan-out channel")


async def events_until_completed(client: VigilClient, run_id: str) -> list[dict]:
    events: list[dict] = []
    while not events or events[-1]["type"] != "agent_completed":
        event = await client.next_event(DEADLINE_S)
        if event["run_id"] == run_id:
            events.append(event)
    return events


async def resume(client: VigilClient, thread_id: str, epoch: str, last_seq: int) -> dict:
    await client.send(
        {"type": "resume", "thread_id": thread_id, "epoch": epoch, "last_seq": last_seq}
    )
    frame = await client.next_frame(DEADLINE_S)
    while frame["type"] != "resumed":
        frame = await client.next_frame(DEADLINE_S)
    return frame


async def metric(backend: BackendProcess, name: str) -> float:
    """One sample (``name`` with its labels, as exposed), or the sum of a family's samples."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{backend.base_url}/metrics", timeout=5)).text
    values = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith((name + " ", name + "{"))
    ]
    if not values:
        raise AssertionError(f"{name} is not exposed")
    return sum(values)


async def all_acked(backend: BackendProcess) -> tuple[float, float]:
    """Wait until the replica counts as acked every event it emitted; (emitted, acked)."""
    for _ in range(int(DEADLINE_S / 0.2)):
        emitted = await metric(backend, "vigil_events_emitted_total")
        acked = await metric(backend, "vigil_events_acked_total")
        if emitted > 0 and acked == emitted:
            break
        await asyncio.sleep(0.2)
    return emitted, acked


async def test_a_client_cut_off_from_one_replica_resumes_on_the_other_without_loss(
    start_replica,
):
    a, b = start_replica("a", 1.0), start_replica("b", 1.0)
    await fanout_ready(a)
    await fanout_ready(b)
    on_a = await VigilClient.open(a.ws_url, a.token("alice"))
    accepted = await on_a.chat(QUESTION)
    before = [await on_a.next_event(DEADLINE_S) for _ in range(2)]
    on_a.websocket.transport.abort()  # Cut off: no close frame, the run goes on on A.
    await on_a.close()

    async with VigilClient.connect(b.ws_url, b.token("alice")) as on_b:
        resumed = await resume(on_b, accepted["thread_id"], before[-1]["epoch"], before[-1]["seq"])
        after = await events_until_completed(on_b, accepted["run_id"])

    assert resumed["recovered"] is True
    events = before + after
    assert_well_formed_run(events)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["data"]["status"] == "completed"
    assert await metric(b, 'vigil_resume_replays_total{source="log"}') == 1
    # A emitted every event; the client acked most of them on B, and A counts those acks.
    emitted, acked = await all_acked(a)
    assert emitted == acked == len(events)


async def test_a_killed_replicas_run_is_ended_with_replica_lost_by_the_other(
    start_replica, module_database
):
    a, b = start_replica("a", 5.0), start_replica("b", 0.0)
    await fanout_ready(b)
    msg_id = f"kill-{time.time_ns()}"
    on_a = await VigilClient.open(a.ws_url, a.token("carol"))
    accepted = await on_a.chat(QUESTION, msg_id=msg_id)
    seen = [await on_a.next_event(DEADLINE_S) for _ in range(2)]  # started, thinking: model call
    a.process.send_signal(signal.SIGKILL)
    killed_at = time.time()
    a.process.wait(10)
    await on_a.close()

    async with VigilClient.connect(b.ws_url, b.token("carol")) as on_b:
        resumed = await resume(on_b, accepted["thread_id"], seen[-1]["epoch"], seen[-1]["seq"])
        rest = await events_until_completed(on_b, accepted["run_id"])

    assert resumed["recovered"] is True
    assert [e["type"] for e in rest] == ["agent_error", "agent_completed"]
    error, completed = rest
    assert error["data"]["reason"] == "replica_lost"
    assert error["data"]["phase"] == "model_call"
    assert completed["data"]["status"] == "failed"
    assert_well_formed_run(seen + rest)
    detected_s = datetime.fromisoformat(error["ts"]).timestamp() - killed_at
    print(f"replica_lost detected {detected_s:.2f} s after SIGKILL")
    assert detected_s <= LEASE_TTL_S + 2 * LEASE_SWEEP_S

    # The run is recorded after its agent_completed is out (a reaper dying in between
    # leaves the record to the next sweep), so the record may follow the event briefly.
    database = Database(module_database)
    await database.connect()
    try:
        for _ in range(100):
            run = await Repository(database).find_run("carol", msg_id)
            if run is not None and run.status != "running":
                break
            await asyncio.sleep(0.05)
    finally:
        await database.close()
    assert run is not None
    assert (run.status, run.error_reason) == ("failed", "replica_lost")


async def test_a_sigtermed_replica_moves_its_client_and_the_run_arrives_on_the_other(
    start_replica,
):
    a, b = start_replica("a", 1.5, VIGIL_SHUTDOWN_GRACE_S="30"), start_replica("b", 0.0)
    await fanout_ready(a)
    await fanout_ready(b)
    on_a = await VigilClient.open(a.ws_url, a.token("dave"))
    accepted = await on_a.chat(QUESTION)
    first = await on_a.next_event(DEADLINE_S)
    a.process.send_signal(signal.SIGTERM)
    await asyncio.wait_for(on_a.websocket.wait_closed(), DEADLINE_S)
    assert on_a.websocket.close_code == 1012
    await on_a.close()

    async with VigilClient.connect(b.ws_url, b.token("dave")) as on_b:
        resumed = await resume(on_b, accepted["thread_id"], first["epoch"], first["seq"])
        rest = await events_until_completed(on_b, accepted["run_id"])

    assert resumed["recovered"] is True
    events = [first, *rest]
    assert_well_formed_run(events)
    assert events[-1]["data"]["status"] == "completed"
    assert await asyncio.to_thread(a.process.wait, DEADLINE_S) == 0
