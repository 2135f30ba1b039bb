"""Event sequence numbers are gapless and unique under concurrency, on both backends."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from core.db.database import Database
from core.db.repository import Repository
from tests.fixtures.databases import OpenDatabase, unique_name

APPENDS = 50


async def _append(repository: Repository, thread_id: str) -> int:
    seq, _ = await repository.append_event(
        thread_id=thread_id,
        run_id="run",
        event_id=unique_name("event"),
        type="agent_thinking",
        build=lambda seq, epoch: {"seq": seq, "epoch": epoch},
        created_at=datetime.now(UTC),
    )
    return seq


async def test_fifty_concurrent_appends_to_one_thread_get_seq_1_to_50(
    migrated_db: Database,
) -> None:
    repository = Repository(migrated_db)
    user = unique_name("user")
    await repository.ensure_user(user)
    thread = await repository.create_thread(user, "busy")

    seqs = await asyncio.gather(*(_append(repository, thread.id) for _ in range(APPENDS)))

    assert sorted(seqs) == list(range(1, APPENDS + 1))
    stored = await repository.list_events(user, thread.id, 0, 1000)
    assert [e.seq for e in stored or []] == list(range(1, APPENDS + 1))
    assert all(e.payload["seq"] == e.seq for e in stored or [])
    after = await repository.get_thread(user, thread.id)
    assert after is not None
    assert after.last_seq == APPENDS


async def test_two_replicas_appending_to_one_thread_never_share_or_skip_a_seq(
    database_url: str, open_database: OpenDatabase
) -> None:
    replicas = [Repository(await open_database(database_url)) for _ in range(2)]
    user = unique_name("user")
    await replicas[0].ensure_user(user)
    thread = await replicas[0].create_thread(user, "shared")

    seqs = await asyncio.gather(*(_append(replicas[i % 2], thread.id) for i in range(APPENDS)))

    assert sorted(seqs) == list(range(1, APPENDS + 1))
