"""The orphan sweep on an in-process backend (real database, publisher and hub): a lost
replica's runs are ended once, through the normal publisher, with what they still lack."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from core.agent.context import UserExecutionContext
from core.client import VigilClient
from core.db.leases import LeaseRepository
from core.db.models import utc_now
from core.leases import phase_of
from core.leases.reaper import OrphanReaper
from core.services import Services
from tests.fixtures.servers import LiveServer
from tests.integration.runs import assert_well_formed_run

# The background sweep stays out of the way: each test sweeps by hand.
QUIET = {"lease_sweep_interval_s": 3600.0}


async def orphan(services: Services, user: str, replica_id: str = "lost-replica") -> Any:
    repository = services.repository
    await repository.ensure_user(user)
    thread = await repository.create_thread(user, "title")
    run, _ = await repository.admit_run(
        run_id=uuid.uuid4().hex,
        thread_id=thread.id,
        user_id=user,
        client_msg_id=uuid.uuid4().hex,
        text="What is 17 * 23?",
        is_canary=False,
        replica_id=replica_id,
        lease_expires_at=utc_now() - timedelta(seconds=1),
    )
    ctx = UserExecutionContext(
        user_id=user,
        thread_id=thread.id,
        run_id=run.id,
        request_id="test",
        client_msg_id=run.client_msg_id,
        text="What is 17 * 23?",
    )
    return thread, run, ctx


async def follow(client: VigilClient, thread_id: str, epoch: str, last_seq: int) -> None:
    await client.send(
        {"type": "resume", "thread_id": thread_id, "epoch": epoch, "last_seq": last_seq}
    )
    while (await client.next_frame(10))["type"] != "resumed":
        pass


async def run_events(client: VigilClient) -> list[dict]:
    events = [await client.next_event(10)]
    while events[-1]["type"] != "agent_completed":
        events.append(await client.next_event(10))
    return events


async def test_a_lost_replicas_run_ends_with_replica_lost_in_the_phase_it_was_in(start_server):
    server: LiveServer = await start_server(**QUIET)
    services = server.services
    thread, run, ctx = await orphan(services, "erin")
    await services.publisher.emit(ctx, "agent_started", {"agent": "vigil", "message": "hi"})
    await services.publisher.emit(ctx, "agent_thinking", {"text": "Calling calculator", "step": 1})

    async with VigilClient.connect(server.ws_url, server.token("erin")) as client:
        await follow(client, thread.id, thread.epoch, 2)
        ended = await services.replica.reaper.sweep()
        events = await run_events(client)

    assert ended == [run.id]
    assert [e["type"] for e in events] == ["agent_error", "agent_completed"]
    assert events[0]["data"]["reason"] == "replica_lost"
    assert events[0]["data"]["phase"] == "model_call"
    assert events[1]["data"]["status"] == "failed"
    assert [e["seq"] for e in events] == [3, 4]
    record = await services.repository.find_run("erin", run.client_msg_id)
    assert record is not None and (record.status, record.error_reason) == ("failed", "replica_lost")
    assert server.metric("vigil_runs_orphaned_total", {"phase": "model_call"}) == 1


async def test_a_run_lost_mid_tool_gets_the_tool_call_closed_before_its_error(start_server):
    server: LiveServer = await start_server(**QUIET)
    services = server.services
    thread, run, ctx = await orphan(services, "ivan")
    await services.publisher.emit(ctx, "agent_started", {"agent": "vigil", "message": "hi"})
    await services.publisher.emit(ctx, "agent_thinking", {"text": "Calling calculator", "step": 1})
    await services.publisher.emit(
        ctx,
        "tool_executing",
        {"tool": "calculator", "call_id": "call-7", "arguments": {"expression": "17 * 23"}},
    )

    assert await services.replica.reaper.sweep() == [run.id]

    stored = await services.repository.list_events("ivan", thread.id, 0, 100)
    assert stored is not None
    events = [event.payload for event in stored]
    assert_well_formed_run(events)
    assert [e["type"] for e in events][-3:] == ["tool_completed", "agent_error", "agent_completed"]
    closing = events[-3]["data"]
    assert (closing["tool"], closing["call_id"], closing["status"]) == (
        "calculator",
        "call-7",
        "error",
    )
    assert closing["error"] == "replica_lost" and closing["duration_ms"] >= 0
    assert events[-2]["data"]["phase"] == "tool_call"
    assert events[-1]["data"]["status"] == "failed"


async def test_a_run_lost_while_ending_gets_only_its_missing_completion(start_server):
    server: LiveServer = await start_server(**QUIET)
    services = server.services
    thread, _, ctx = await orphan(services, "frank")
    await services.publisher.emit(ctx, "agent_started", {"agent": "vigil", "message": "hi"})
    await services.publisher.emit(
        ctx, "agent_error", {"reason": "phase_timeout", "phase": "tool_call", "message": "slow"}
    )

    await services.replica.reaper.sweep()

    stored = await services.repository.list_events("frank", thread.id, 0, 100)
    assert stored is not None
    assert [e.type for e in stored] == ["agent_started", "agent_error", "agent_completed"]
    assert stored[-1].payload["data"]["status"] == "timeout"


async def test_a_second_sweep_finds_nothing_left_to_end(start_server):
    server: LiveServer = await start_server(**QUIET)
    _, run, _ = await orphan(server.services, "gina")

    assert await server.services.replica.reaper.sweep() == [run.id]
    assert await server.services.replica.reaper.sweep() == []


async def test_the_sweep_leaves_this_replicas_own_runs_alone(start_server):
    server: LiveServer = await start_server(**QUIET)
    services = server.services
    _, run, _ = await orphan(services, "hank", replica_id=services.replica.id)

    assert await services.replica.reaper.sweep() == []
    record = await services.repository.find_run("hank", run.client_msg_id)
    assert record is not None and record.status == "running"


async def test_each_claim_of_a_sweep_leases_its_run_from_the_time_it_was_claimed(start_server):
    server: LiveServer = await start_server(**QUIET)
    services = server.services
    _, first, _ = await orphan(services, "jack")
    _, second, _ = await orphan(services, "kate")
    start = utc_now()
    reads = iter(range(100))

    def slow_sweep_clock() -> datetime:
        # Each reading is a minute after the previous: ending an orphan takes a while.
        return start + timedelta(minutes=next(reads))

    reaper = OrphanReaper(
        LeaseRepository(services.database),
        services.repository,
        services.publisher,
        replica_id="sweeper",
        ttl_s=30.0,
        sweep_interval_s=3600.0,
        metrics=services.metrics,
        replica_metrics=services.replica.metrics,
        clock=slow_sweep_clock,
    )

    assert sorted(await reaper.sweep()) == sorted([first.id, second.id])
    leases = []
    for user, run in (("jack", first), ("kate", second)):
        record = await services.repository.find_run(user, run.client_msg_id)
        assert record is not None and record.lease_expires_at is not None
        leases.append(record.lease_expires_at)
    # The later claim's lease runs from its own reading of the clock, not the sweep's start.
    assert abs(leases[1] - leases[0]) >= timedelta(minutes=1)
    assert min(leases) > start + timedelta(minutes=1)


@pytest.mark.parametrize(
    ("last_event", "phase"),
    [
        (None, "preflight"),
        ("agent_started", "triage"),
        ("agent_thinking", "model_call"),
        ("tool_executing", "tool_call"),
        ("tool_completed", "model_call"),
        ("something_new", "unknown"),
    ],
)
def test_the_phase_of_a_lost_run_is_read_from_its_last_event(last_event, phase):
    assert phase_of(last_event) == phase
