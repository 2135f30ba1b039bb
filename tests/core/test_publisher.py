"""The publisher on an in-process backend (real SQLite, hub and deliveries): events of many
runs share transactions, a run whose event failed stores nothing more but its ending, and
data that cannot be stored fails its own run only."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from pydantic_core import PydanticSerializationError
from sqlalchemy import make_url, update

from core.agent.context import UserExecutionContext
from core.db.models import Run
from core.db.records import RunTakenOver
from core.services import Services
from tests.fixtures.databases import PostgresServer
from tests.fixtures.servers import LiveServer


async def new_run(services: Services, user: str, replica_id: str | None) -> UserExecutionContext:
    repository = services.repository
    await repository.ensure_user(user)
    admission = await repository.admit_chat(
        run_id=uuid.uuid4().hex,
        thread_id=None,
        title="t",
        user_id=user,
        client_msg_id=uuid.uuid4().hex,
        text="hi",
        is_canary=False,
        replica_id=replica_id,
    )
    return UserExecutionContext(
        user_id=user,
        thread_id=admission.run.thread_id,
        run_id=admission.run.id,
        request_id="test",
        client_msg_id=admission.run.client_msg_id,
        text="hi",
        lease_holder="this-replica",
    )


async def last_seq(services: Services, ctx: UserExecutionContext) -> int:
    thread = await services.repository.get_thread(ctx.user_id, ctx.thread_id)
    assert thread is not None
    return thread.last_seq


async def test_events_of_many_runs_share_transactions_and_keep_each_threads_order(
    start_server: Any,
) -> None:
    server: LiveServer = await start_server()
    services = server.services
    runs = [await new_run(services, f"user-{i}", "this-replica") for i in range(10)]
    publisher = services.publisher
    batches_before = publisher.batches.batches
    futures = [
        publisher.submit(ctx, "agent_thinking", {"text": f"step {step}", "step": step})
        for step in (1, 2, 3)
        for ctx in runs
    ]
    events = await asyncio.gather(*futures)
    assert publisher.batches.batches - batches_before < len(futures)
    for ctx in runs:
        mine = [e for e in events if e.run_id == ctx.run_id]
        assert [e.seq for e in mine] == [1, 2, 3]
        assert [e.data["step"] for e in mine] == [1, 2, 3]
        stored = await services.repository.list_events(ctx.user_id, ctx.thread_id, 0, 10)
        assert [e.payload["data"]["step"] for e in stored or []] == [1, 2, 3]


async def test_a_run_whose_event_failed_stores_nothing_more_but_its_ending(
    start_server: Any,
) -> None:
    server: LiveServer = await start_server()
    services = server.services
    taken = await new_run(services, "alice", "another-replica")
    bystander = await new_run(services, "bob", "this-replica")
    publisher = services.publisher
    with pytest.raises(RunTakenOver):
        await publisher.emit(taken, "agent_thinking", {"text": "a", "step": 1})
    # Even were the lease ours again, nothing but the run's ending may follow the failure:
    # the client would see the run with a hole in it.
    async with services.database.session("test", write=True) as session:
        await session.execute(
            update(Run).where(Run.id == taken.run_id).values(replica_id="this-replica")
        )
    later = publisher.submit(taken, "agent_thinking", {"text": "b", "step": 2})
    other = publisher.submit(bystander, "agent_thinking", {"text": "c", "step": 1})
    with pytest.raises(RunTakenOver):
        await later
    assert (await other).seq == 1
    assert await last_seq(services, taken) == 0
    ending = await publisher.emit(
        taken, "agent_error", {"reason": "x", "phase": "model_call", "message": "m"}, ending=True
    )
    assert ending.seq == 1
    publisher.forget(taken.run_id)
    assert (await publisher.emit(taken, "agent_thinking", {"text": "d", "step": 3})).seq == 2


async def test_data_that_cannot_be_stored_fails_its_own_run_only(start_server: Any) -> None:
    server: LiveServer = await start_server()
    services = server.services
    ctx = await new_run(services, "carol", "this-replica")
    with pytest.raises(PydanticSerializationError):
        services.publisher.submit(ctx, "tool_completed", {"result": object()})
    event = await services.publisher.emit(ctx, "agent_thinking", {"text": "fine", "step": 1})
    assert event.seq == 1


@pytest.mark.postgres
async def test_a_batch_that_loses_a_deadlock_is_tried_again_and_stored(
    start_server: Any, postgres_session_url: str, postgres_server: PostgresServer
) -> None:
    """A real deadlock: the batch locks its runs in id order; another session holds the
    higher run and then asks for the lower one. PostgreSQL aborts the batch (its session
    looks for deadlocks first), which is tried again once the other session is done."""
    server: LiveServer = await start_server(database_url=postgres_session_url)
    services = server.services
    runs = [await new_run(services, f"deadlock-{i}", "this-replica") for i in range(2)]
    low, high = sorted(runs, key=lambda ctx: ctx.run_id)
    database = make_url(postgres_session_url).database
    other, watcher = (
        await postgres_server.connect(database),
        await postgres_server.connect(database),
    )
    try:
        transaction = other.transaction()
        await transaction.start()
        # This session waits a minute before it looks for a deadlock: the batch is the victim.
        await other.execute("SET LOCAL deadlock_timeout = '60s'")
        await other.execute("SELECT 1 FROM runs WHERE id = $1 FOR UPDATE", high.run_id)
        stored = [
            services.publisher.submit(ctx, "agent_thinking", {"text": "t", "step": 1})
            for ctx in (low, high)
        ]
        waiting = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'vigil' "
        waiting += "AND wait_event_type = 'Lock'"
        for _ in range(500):  # the batch holds the lower run and waits for the higher one
            if await watcher.fetchval(waiting):
                break
            await asyncio.sleep(0.01)
        await other.execute("SELECT 1 FROM runs WHERE id = $1 FOR UPDATE", low.run_id)
        await transaction.commit()
    finally:
        await other.close()
        await watcher.close()
    events = await asyncio.gather(*stored)
    assert [(event.run_id, event.seq) for event in events] == [(low.run_id, 1), (high.run_id, 1)]
    assert "event_batch_retrying" in server.logs.getvalue()
