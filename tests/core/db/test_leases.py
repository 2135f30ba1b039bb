"""Run leases in the database, on SQLite and PostgreSQL: renewal, orphans, exclusive claims.

The PostgreSQL database is shared by the session, so each test looks only at its own runs.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from core.db.database import Database
from core.db.leases import LeaseRepository
from core.db.records import RunTakenOver
from core.db.repository import Repository
from tests.fixtures.databases import unique_name

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def repository(migrated_db: Database) -> Repository:
    return Repository(migrated_db)


@pytest.fixture
def leases(migrated_db: Database) -> LeaseRepository:
    return LeaseRepository(migrated_db)


async def admit(
    repository: Repository, replica_id: str | None, expires_at: datetime | None
) -> tuple[str, str]:
    user = unique_name("user")
    await repository.ensure_user(user)
    thread = await repository.create_thread(user, "title")
    run, created = await repository.admit_run(
        run_id=unique_name("run"),
        thread_id=thread.id,
        user_id=user,
        client_msg_id=unique_name("msg"),
        text="hello",
        is_canary=False,
        replica_id=replica_id,
        lease_expires_at=expires_at,
    )
    assert created and run.replica_id == replica_id
    return run.id, thread.id


async def finish(repository: Repository, run_id: str, lease_holder: str | None = None) -> None:
    await repository.finish_run(
        run_id,
        status="completed",
        duration_ms=1.0,
        input_tokens=0,
        output_tokens=0,
        answer_text=None,
        error_category=None,
        error_reason=None,
        lease_holder=lease_holder,
    )


async def test_renewal_extends_only_this_replicas_running_runs(repository, leases):
    mine = unique_name("replica")
    running, _ = await admit(repository, mine, T0)
    finished, _ = await admit(repository, mine, T0)
    others, _ = await admit(repository, unique_name("replica"), T0)
    await finish(repository, finished)

    renewed = await leases.renew(mine, T0 + timedelta(seconds=60))

    assert renewed == [running]
    expired = {o.id for o in await leases.expired(now=T0 + timedelta(seconds=1), limit=1000)}
    assert others in expired and running not in expired and finished not in expired


async def test_an_orphan_is_a_running_run_whose_lease_expired_with_its_last_event(
    repository, leases
):
    dead = unique_name("replica")
    orphan, thread_id = await admit(repository, dead, T0)
    live, _ = await admit(repository, dead, T0 + timedelta(days=3650))
    unleased, _ = await admit(repository, None, None)
    for kind in ("agent_started", "tool_executing"):
        await repository.append_event(
            thread_id=thread_id,
            run_id=orphan,
            event_id=unique_name("event"),
            type=kind,
            build=lambda seq, epoch, kind=kind: {"type": kind, "data": {"tool": "calculator"}},
            created_at=T0,
        )

    found = {o.id: o for o in await leases.expired(now=T0 + timedelta(seconds=1), limit=1000)}

    assert orphan in found and live not in found and unleased not in found
    assert found[orphan].replica_id == dead
    assert found[orphan].last_event_type == "tool_executing"
    assert found[orphan].last_event_data == {"tool": "calculator"}
    assert found[orphan].lease_expires_at == T0


async def test_a_sweeping_replicas_own_expired_runs_never_crowd_out_other_orphans(
    repository, leases
):
    mine, lost = unique_name("replica"), unique_name("replica")
    # Older than anything else in this (possibly shared) database, so first in expiry order.
    long_ago = T0 - timedelta(days=7300)
    own = [await admit(repository, mine, long_ago - timedelta(seconds=i)) for i in range(6)]
    orphan, _ = await admit(repository, lost, long_ago + timedelta(seconds=1))
    unowned, _ = await admit(repository, None, long_ago + timedelta(seconds=2))

    now = long_ago + timedelta(seconds=3)
    found = [o.id for o in await leases.expired(now=now, limit=5, excluding=mine)]

    assert found == [orphan, unowned]
    assert {run_id for run_id, _ in own} <= {o.id for o in await leases.expired(now=now, limit=100)}


async def test_of_replicas_claiming_one_orphan_at_once_exactly_one_wins(repository, leases):
    orphan, _ = await admit(repository, unique_name("replica"), T0)
    now = T0 + timedelta(seconds=1)

    claims = await asyncio.gather(
        *(
            leases.claim(orphan, f"claimer-{i}", now=now, expires_at=now + timedelta(seconds=6))
            for i in range(4)
        )
    )

    assert sorted(claims) == [False, False, False, True]
    assert orphan not in {o.id for o in await leases.expired(now=now, limit=1000)}


async def test_a_finished_run_cannot_be_claimed(repository, leases):
    run_id, _ = await admit(repository, unique_name("replica"), T0)
    await finish(repository, run_id)
    now = T0 + timedelta(seconds=1)

    assert not await leases.claim(run_id, "claimer", now=now, expires_at=now)


async def append(repository: Repository, thread_id: str, run_id: str, holder: str) -> int:
    seq, _ = await repository.append_event(
        thread_id=thread_id,
        run_id=run_id,
        event_id=unique_name("event"),
        type="agent_thinking",
        build=lambda seq, epoch: {"type": "agent_thinking", "seq": seq},
        created_at=T0,
        lease_holder=holder,
    )
    return seq


async def test_a_replica_whose_run_was_taken_over_can_store_nothing_more_of_it(repository, leases):
    cut_off, reaper = unique_name("replica"), unique_name("replica") + "/reaper"
    run_id, thread_id = await admit(repository, cut_off, T0)
    assert await append(repository, thread_id, run_id, cut_off) == 1
    assert await leases.claim(
        run_id, reaper, now=T0 + timedelta(seconds=1), expires_at=T0 + timedelta(seconds=60)
    )

    with pytest.raises(RunTakenOver) as taken:
        await append(repository, thread_id, run_id, cut_off)
    assert taken.value.holder == reaper
    with pytest.raises(RunTakenOver):
        await finish(repository, run_id, lease_holder=cut_off)

    # The holder goes on where the thread stands: the refused append left no gap.
    assert await append(repository, thread_id, run_id, reaper) == 2
    assert [o.id for o in await leases.expired(now=T0 + timedelta(days=1), limit=1000)].count(
        run_id
    ) == 1  # still running: the refused finish changed nothing
