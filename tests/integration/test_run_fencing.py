"""Fencing: a replica whose run another replica has taken over (it was cut off past its
lease, and the other ended the run with replica_lost) stores and sends nothing more of it."""

import asyncio
import time
from datetime import UTC, datetime, timedelta

from core.client import VigilClient
from core.db.leases import LeaseRepository
from tests.integration.test_run_failures import StallingProvider


class WatchedStall(StallingProvider):
    """Stalls like its parent, and says when the run reached the model."""

    def __init__(self) -> None:
        super().__init__()
        self.called = asyncio.Event()

    async def complete(self, messages, tools):
        self.called.set()
        return await super().complete(messages, tools)


async def stored(repository, thread_id):
    return await repository.list_events("alice", thread_id, 0, 100) or []


async def test_a_run_taken_over_by_another_replica_stops_here_without_a_word_more(start_server):
    provider = WatchedStall()
    server = await start_server(provider_instance=provider)
    repository = server.services.repository
    async with VigilClient.connect(server.ws_url, server.token("alice")) as client:
        accepted = await client.chat("What is 17 * 23?")
        await asyncio.wait_for(provider.called.wait(), 10)
        # The run does not wait for its first events to be stored before the model call.
        deadline = time.monotonic() + 10
        while len(before := await stored(repository, accepted["thread_id"])) < 2:
            assert time.monotonic() < deadline, f"agent_started, agent_thinking: {before}"
            await asyncio.sleep(0.01)
        # Another replica's reaper claims the run, as it would once this one's lease expired.
        later = datetime.now(UTC) + timedelta(days=1)
        leases = LeaseRepository(server.services.database)
        assert await leases.claim(
            accepted["run_id"], "replica-b/reaper", now=later, expires_at=later
        )
        provider.release.set()  # the model answers; the run tries to go on

        deadline = time.monotonic() + 10
        while server.metric("vigil_runs_fenced_total") < 1:
            assert time.monotonic() < deadline, "the run was never fenced"
            await asyncio.sleep(0.01)

        after = await stored(repository, accepted["thread_id"])
        assert [e.seq for e in after] == [e.seq for e in before]
        assert [e.type for e in before] == ["agent_started", "agent_thinking"]
        assert server.services.executor.running() == 0
        assert server.metric("vigil_runs_total", {"status": "completed"}) == 0
        assert '"event": "run_taken_over"' in server.logs.getvalue()
