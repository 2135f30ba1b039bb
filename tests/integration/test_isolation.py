"""Isolation: a user sees only their own events, under load and even if routing errs."""

import asyncio

import pytest

from core.client import VigilClient
from core.protocol import AgentEvent, utc_now
from tests.integration.runs import assert_well_formed_run

USERS = 200
# This test is about who sees what, not speed (that is `make bench`): on a loaded 2-core
# machine 600 simultaneous runs on SQLite take a while, so nothing here may time out.
PATIENCE_S = 180
RUNS_PER_USER = 3
MESSAGES = [
    "hello",
    "What is 12 * 12?",
    "What is 2 + 2 and what do 5000 output tokens cost on gpt-4o?",
]


async def one_user(server, index: int) -> tuple[set[str], list[dict]]:
    async with VigilClient.connect(server.ws_url, server.token(f"user-{index}")) as client:
        accepted = [
            await client.chat(MESSAGES[n % len(MESSAGES)], timeout=PATIENCE_S)
            for n in range(RUNS_PER_USER)
        ]
        runs = {a["run_id"] for a in accepted}
        events: list[dict] = []
        completed = 0
        while completed < RUNS_PER_USER:
            event = await client.next_event(PATIENCE_S)
            events.append(event)
            completed += event["type"] == "agent_completed"
        return runs, events


@pytest.mark.slow
async def test_two_hundred_users_each_see_only_their_own_complete_runs(start_server):
    live_server = await start_server(
        run_timeout_s=PATIENCE_S,
        preflight_timeout_s=PATIENCE_S,
        max_runs_total=USERS * RUNS_PER_USER,
    )
    results = await asyncio.gather(*(one_user(live_server, i) for i in range(USERS)))
    all_runs = [run for runs, _ in results for run in runs]
    assert len(set(all_runs)) == USERS * RUNS_PER_USER
    for runs, events in results:
        assert {event["run_id"] for event in events} == runs
        for run_id in runs:
            assert_well_formed_run([e for e in events if e["run_id"] == run_id])
    assert live_server.metric("vigil_isolation_violations_total") == 0
    assert live_server.metric("vigil_runs_total", {"status": "completed"}) == USERS * RUNS_PER_USER


async def test_the_send_guard_blocks_an_event_addressed_to_another_user(live_server):
    async with VigilClient.connect(live_server.ws_url, live_server.token("alice")) as alice:
        connection = next(iter(live_server.services.hub.all()))
        connection.follow("thread-of-bob")
        stray = AgentEvent(
            type="agent_started",
            thread_id="thread-of-bob",
            run_id="run-of-bob",
            epoch="e",
            seq=1,
            event_id="x",
            ts=utc_now(),
            data={"agent": "vigil", "message": "bob's secret"},
        )
        assert connection.send_event(stray, owner_user_id="bob") is False
        with pytest.raises(TimeoutError):
            await alice.next_event(0.3)
    assert live_server.metric("vigil_isolation_violations_total") == 1
    assert '"isolation_violation_blocked"' in live_server.logs.getvalue()
    assert '"level": "critical"' in live_server.logs.getvalue()
