"""Plain, frozen records the repository hands out, and those it is handed: no ORM object
ever leaves ``core.db``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.db.models import RUN_STATUSES, Event, Run, Thread

BuildPayload = Callable[[int, str], dict[str, Any]]
FINAL_STATUSES = RUN_STATUSES[1:]


class ThreadNotFound(LookupError):
    """The thread does not exist, or belongs to another user (the two are not told apart).

    Not a ``DatabaseError``: the database worked; the caller asked for something it may not
    have. It is not reported to ``on_error``.
    """


class RunNotFound(LookupError):
    """``finish_run`` was given a run id that was never admitted."""


class RunTakenOver(Exception):
    """The run's lease is held by someone else: another replica ended it (``replica_lost``)
    while this one was cut off. Nothing more of it may be stored (fencing)."""

    def __init__(self, run_id: str, holder: str | None) -> None:
        super().__init__(f"run {run_id} is now held by {holder!r}")
        self.run_id = run_id
        self.holder = holder


@dataclass(frozen=True)
class ThreadRecord:
    id: str
    user_id: str
    epoch: str
    title: str
    last_seq: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Thread) -> ThreadRecord:
        return cls(
            id=row.id,
            user_id=row.user_id,
            epoch=row.epoch,
            title=row.title,
            last_seq=row.last_seq,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


@dataclass(frozen=True)
class RunRecord:
    id: str
    thread_id: str
    user_id: str
    client_msg_id: str
    status: str
    is_canary: bool
    started_at: datetime
    completed_at: datetime | None
    duration_ms: float | None
    input_tokens: int
    output_tokens: int
    error_category: str | None
    error_reason: str | None
    replica_id: str | None = None
    lease_expires_at: datetime | None = None

    @classmethod
    def of(cls, row: Run) -> RunRecord:
        return cls(
            id=row.id,
            thread_id=row.thread_id,
            user_id=row.user_id,
            client_msg_id=row.client_msg_id,
            status=row.status,
            is_canary=row.is_canary,
            started_at=row.started_at,
            completed_at=row.completed_at,
            duration_ms=row.duration_ms,
            input_tokens=row.input_tokens,
            output_tokens=row.output_tokens,
            error_category=row.error_category,
            error_reason=row.error_reason,
            replica_id=row.replica_id,
            lease_expires_at=row.lease_expires_at,
        )


@dataclass(frozen=True)
class EventRecord:
    thread_id: str
    seq: int
    epoch: str
    run_id: str
    event_id: str
    type: str
    payload: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, row: Event) -> EventRecord:
        return cls(
            thread_id=row.thread_id,
            seq=row.seq,
            epoch=row.epoch,
            run_id=row.run_id,
            event_id=row.event_id,
            type=row.type,
            payload=row.payload,
            created_at=row.created_at,
        )


@dataclass(frozen=True)
class UsageSummary:
    """One user's runs, canaries excluded. Durations cover finished runs (any status);
    ``p95_duration_ms`` is the nearest-rank 95th percentile; both are ``None`` without any."""

    runs_total: int
    runs_by_status: dict[str, int]
    input_tokens: int
    output_tokens: int
    mean_duration_ms: float | None
    p95_duration_ms: float | None


# What ``append_events`` answers for each event: its (seq, epoch), or why it was refused.
AppendOutcome = tuple[int, str] | ThreadNotFound | RunNotFound | RunTakenOver


@dataclass(frozen=True)
class Admission:
    """A chat's run, its thread's epoch, and whether this admission created the run."""

    run: RunRecord
    epoch: str
    created: bool


@dataclass(frozen=True)
class RunResult:
    """How a run ended: what ``finish_run`` records, or an ``agent_completed`` carries
    into its own transaction (``NewEvent.result``)."""

    status: str
    duration_ms: float
    input_tokens: int = 0
    output_tokens: int = 0
    answer_text: str | None = None
    error_category: str | None = None
    error_reason: str | None = None

    def __post_init__(self) -> None:
        if self.status not in FINAL_STATUSES:
            raise ValueError(f"not a final run status: {self.status!r}")


@dataclass(frozen=True)
class NewEvent:
    """An event to store: ``build(seq, epoch)`` makes its payload once the seq is known.
    With ``result``, the run is recorded as ended in the same transaction (atomically:
    the run's last event and its record are stored together or not at all)."""

    thread_id: str
    run_id: str
    event_id: str
    type: str
    build: BuildPayload
    created_at: datetime
    lease_holder: str | None = None
    result: RunResult | None = None

    def __post_init__(self) -> None:
        if self.result is not None and self.lease_holder is None:
            # The fence is what makes sure the run exists and is still this holder's.
            raise ValueError("an event that records its run's result needs its lease holder")
