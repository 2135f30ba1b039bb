"""``Repository`` behaviour a user would notice, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from core.db.database import Database
from core.db.models import Message
from core.db.repository import Repository, ThreadNotFound
from tests.fixtures.databases import ErrorLog, unique_name

T0 = datetime(2025, 1, 1, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def repository(migrated_db: Database, clock: Clock) -> Repository:
    return Repository(migrated_db, clock=clock)


async def new_user(repository: Repository) -> str:
    user = unique_name("user")
    assert await repository.ensure_user(user)
    return user


def envelope(thread_id: str, kind: str = "agent_thinking") -> Callable[[int, str], dict]:
    def build(seq: int, epoch: str) -> dict:
        return {"type": kind, "thread_id": thread_id, "seq": seq, "epoch": epoch, "data": {}}

    return build


async def append(repository: Repository, thread_id: str, run_id: str = "run") -> tuple[int, str]:
    return await repository.append_event(
        thread_id=thread_id,
        run_id=run_id,
        event_id=unique_name("event"),
        type="agent_thinking",
        build=envelope(thread_id),
        created_at=T0,
    )


async def test_a_new_user_is_enabled_and_a_disabled_one_is_refused(
    repository: Repository,
) -> None:
    user = await new_user(repository)
    assert await repository.ensure_user(user)

    await repository.set_user_disabled(user, True)

    assert not await repository.ensure_user(user)


async def test_a_thread_reads_back_with_aware_utc_timestamps(repository: Repository) -> None:
    user = await new_user(repository)

    created = await repository.create_thread(user, "Costs of models")
    found = await repository.get_thread(user, created.id)

    assert found == created
    assert found.created_at == T0
    assert found.created_at.tzinfo is UTC
    assert (found.last_seq, len(found.epoch)) == (0, 12)


async def test_another_users_thread_looks_exactly_like_a_missing_one(
    repository: Repository,
) -> None:
    owner, intruder = await new_user(repository), await new_user(repository)
    thread = await repository.create_thread(owner, "private")
    await append(repository, thread.id)

    assert await repository.get_thread(intruder, thread.id) is None
    assert await repository.get_thread(intruder, "no-such-thread") is None
    assert await repository.list_events(intruder, thread.id, 0, 100) is None
    assert await repository.list_events(intruder, "no-such-thread", 0, 100) is None
    assert await repository.list_event_payloads(intruder, thread.id, 0, 100) is None
    assert await repository.list_threads(intruder) == []


async def test_a_run_cannot_be_admitted_into_another_users_thread(
    repository: Repository,
) -> None:
    owner, intruder = await new_user(repository), await new_user(repository)
    thread = await repository.create_thread(owner, "private")

    with pytest.raises(ThreadNotFound):
        await repository.admit_run(
            run_id="r1",
            thread_id=thread.id,
            user_id=intruder,
            client_msg_id="m1",
            text="let me in",
            is_canary=False,
        )
    assert await repository.find_run(intruder, "m1") is None


async def test_threads_are_listed_most_recently_active_first(
    repository: Repository, clock: Clock
) -> None:
    user = await new_user(repository)
    older = await repository.create_thread(user, "older")
    clock.advance(1)
    newer = await repository.create_thread(user, "newer")
    clock.advance(1)
    await repository.admit_run(
        run_id=unique_name("run"),
        thread_id=older.id,
        user_id=user,
        client_msg_id="m1",
        text="back to the older one",
        is_canary=False,
    )

    listed = await repository.list_threads(user)

    assert [t.id for t in listed] == [older.id, newer.id]
    assert listed[0].updated_at == T0 + timedelta(seconds=2)


async def test_the_same_client_message_id_twice_starts_one_run(
    repository: Repository, migrated_db: Database, db_errors: ErrorLog
) -> None:
    user = await new_user(repository)
    thread = await repository.create_thread(user, "t")

    first, created = await repository.admit_run(
        run_id="run-a", thread_id=thread.id, user_id=user, client_msg_id="m1", text="hi",
        is_canary=False,
    )  # fmt: skip
    second, created_again = await repository.admit_run(
        run_id="run-b", thread_id=thread.id, user_id=user, client_msg_id="m1", text="hi",
        is_canary=False,
    )  # fmt: skip

    assert (created, created_again) == (True, False)
    assert second == first
    assert await repository.find_run(user, "m1") == first
    assert db_errors.calls == []  # an expected duplicate is not a database failure
    async with migrated_db.session("read_messages") as session:
        texts = (await session.scalars(select(Message.text).where(Message.user_id == user))).all()
    assert texts == ["hi"]


async def test_concurrent_duplicates_of_one_client_message_id_start_exactly_one_run(
    repository: Repository,
) -> None:
    user = await new_user(repository)
    thread = await repository.create_thread(user, "t")

    results = await asyncio.gather(
        *(
            repository.admit_run(
                run_id=f"run-{i}-{user}",
                thread_id=thread.id,
                user_id=user,
                client_msg_id="same",
                text="hi",
                is_canary=False,
            )
            for i in range(10)
        )
    )

    assert sum(created for _, created in results) == 1
    assert len({run.id for run, _ in results}) == 1


async def test_finishing_a_run_records_its_outcome_and_the_answer(
    repository: Repository, migrated_db: Database, clock: Clock
) -> None:
    user = await new_user(repository)
    thread = await repository.create_thread(user, "t")
    run, _ = await repository.admit_run(
        run_id=unique_name("run"), thread_id=thread.id, user_id=user, client_msg_id="m1",
        text="2+2?", is_canary=False,
    )  # fmt: skip
    clock.advance(3)

    await repository.finish_run(
        run.id, status="completed", duration_ms=1234.5, input_tokens=11, output_tokens=7,
        answer_text="4", error_category=None, error_reason=None,
    )  # fmt: skip

    finished = await repository.find_run(user, "m1")
    assert finished is not None
    assert (finished.status, finished.duration_ms) == ("completed", 1234.5)
    assert (finished.input_tokens, finished.output_tokens) == (11, 7)
    assert finished.completed_at == T0 + timedelta(seconds=3)
    async with migrated_db.session("read_messages") as session:
        rows = (
            await session.execute(
                select(Message.role, Message.text)
                .where(Message.thread_id == thread.id)
                .order_by(Message.created_at)
            )
        ).all()
    assert [tuple(row) for row in rows] == [("user", "2+2?"), ("assistant", "4")]


async def test_a_stored_event_carries_its_own_seq_and_epoch(repository: Repository) -> None:
    user = await new_user(repository)
    thread = await repository.create_thread(user, "t")

    first = await append(repository, thread.id)
    second = await append(repository, thread.id)
    events = await repository.list_events(user, thread.id, 0, 100)

    assert (first, second) == ((1, thread.epoch), (2, thread.epoch))
    assert events is not None
    assert [(e.seq, e.payload["seq"], e.payload["epoch"]) for e in events] == [
        (1, 1, thread.epoch),
        (2, 2, thread.epoch),
    ]
    assert events[0].created_at == T0


async def test_listing_events_pages_by_after_seq_and_limit(repository: Repository) -> None:
    user = await new_user(repository)
    thread = await repository.create_thread(user, "t")
    for _ in range(5):
        await append(repository, thread.id)

    page = await repository.list_events(user, thread.id, 2, 2)
    rest = await repository.list_events(user, thread.id, 4, 100)
    beyond = await repository.list_events(user, thread.id, 5, 100)

    assert [e.seq for e in page or []] == [3, 4]
    assert [e.seq for e in rest or []] == [5]
    assert beyond == []


async def test_a_resumes_payloads_are_the_stored_json_paged_like_the_events(
    repository: Repository,
) -> None:
    user = await new_user(repository)
    thread = await repository.create_thread(user, "t")
    for _ in range(5):
        await append(repository, thread.id)

    page = await repository.list_event_payloads(user, thread.id, 2, 2)
    events = await repository.list_events(user, thread.id, 2, 2)

    assert page is not None and events is not None
    assert [json.loads(text) for text in page] == [event.payload for event in events]
    assert [json.loads(text)["seq"] for text in page] == [3, 4]
    assert await repository.list_event_payloads(user, thread.id, 5, 100) == []


async def test_usage_summary_counts_only_that_users_non_canary_runs(
    repository: Repository,
) -> None:
    user, other = await new_user(repository), await new_user(repository)

    async def run(owner: str, status: str, duration_ms: float, *, canary: bool = False) -> None:
        thread = await repository.create_thread(owner, "t")
        admitted, _ = await repository.admit_run(
            run_id=unique_name("run"), thread_id=thread.id, user_id=owner,
            client_msg_id=unique_name("m"), text="q", is_canary=canary,
        )  # fmt: skip
        await repository.finish_run(
            admitted.id, status=status, duration_ms=duration_ms, input_tokens=10,
            output_tokens=5, answer_text=None, error_category=None, error_reason=None,
        )  # fmt: skip

    for duration in range(100, 2100, 100):  # 20 completed runs: 100 ms .. 2000 ms
        await run(user, "completed", float(duration))
    await run(user, "timeout", 30_000.0)
    await run(user, "completed", 99_000.0, canary=True)
    await run(other, "failed", 50_000.0)

    summary = await repository.usage_summary(user)

    assert summary.runs_total == 21
    assert summary.runs_by_status == {"completed": 20, "timeout": 1}
    assert (summary.input_tokens, summary.output_tokens) == (210, 105)
    assert summary.mean_duration_ms == pytest.approx((sum(range(100, 2100, 100)) + 30_000) / 21)
    assert summary.p95_duration_ms == 2000.0  # nearest rank: the 20th of 21


async def test_usage_summary_of_a_user_without_runs_is_empty(repository: Repository) -> None:
    summary = await repository.usage_summary(await new_user(repository))

    assert (summary.runs_total, summary.runs_by_status) == (0, {})
    assert (summary.input_tokens, summary.output_tokens) == (0, 0)
    assert (summary.mean_duration_ms, summary.p95_duration_ms) == (None, None)
