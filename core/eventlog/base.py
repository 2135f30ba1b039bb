"""The event log interface: a bounded, per-thread history of recent agent events that every
replica can read, and the fan-out that brings each event to the replica holding the
owner's connections.

The database stays the source of truth: it assigns each event's ``seq`` and ``epoch`` and
keeps every event. The log is a fast, bounded window over the newest events, used to replay
a resume without a database query and to carry live events between replicas. It may forget
(trimming, a flushed Redis); a read says whether what it returns is complete, and the
caller falls back to the database when it is not.

Failures of the log never raise into the request path: the backend logs them, counts them in
``vigil_eventlog_errors_total{backend, operation}`` and carries on without the log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from core.protocol import AgentEvent, EncodedEvent

# Called with (owner user id, event) for every event appended by another replica.
Deliver = Callable[[str, AgentEvent], None]
# Called with (thread id, seq) for every cumulative ack another replica received.
OnAck = Callable[[str, int], None]
# Called with (backend, operation) when the log fails; the app counts it.
OnError = Callable[[str, str], None]


@dataclass(frozen=True)
class LogRead:
    """The log's events of one thread after a seq, and whether they are all of them.

    ``complete`` is true only when ``events`` starts right after the asked seq, has no gap,
    belongs to the asked epoch and runs up to the newest event the log holds for the thread.
    The events come as the log holds them, serialised (a resume sends them as they are).
    """

    events: list[EncodedEvent]
    complete: bool

    @property
    def last_seq(self) -> int | None:
        return self.events[-1].seq if self.events else None


MISSING = LogRead(events=[], complete=False)


class Sequenced(Protocol):
    @property
    def seq(self) -> int: ...

    @property
    def epoch(self) -> str: ...


def contiguous(events: Iterable[Sequenced], after_seq: int, epoch: str) -> bool:
    """True when ``events`` are ``after_seq + 1, after_seq + 2, ...`` of ``epoch``."""
    expected = after_seq + 1
    for event in events:
        if event.seq != expected or event.epoch != epoch:
            return False
        expected += 1
    return True


class EventLog(Protocol):
    """What the publisher, the resume handler and the readiness probe use."""

    backend: str

    async def start(self, deliver: Deliver, on_ack: OnAck) -> None:
        """Begin fan-out: ``deliver`` gets every event appended by other replicas, and
        ``on_ack`` every ack their clients sent (the emitting replica counts it)."""

    async def append(self, user_id: str, event: AgentEvent) -> bool:
        """Add an event the database has already stored; ``False`` if the log failed
        (logged and counted). Appends of one thread come in seq order."""

    async def append_all(self, events: Sequence[tuple[str, AgentEvent]]) -> list[bool]:
        """``append`` for each ``(owner user id, event)``, in order, at once (Redis: one
        round trip); for each, ``False`` if the log failed it."""

    async def acked(self, thread_id: str, seq: int) -> None:
        """Tell the other replicas a client acked the thread up to ``seq`` (the caller has
        checked the ack). Never raises."""

    async def read(self, thread_id: str, epoch: str, after_seq: int, limit: int) -> LogRead:
        """Up to ``limit`` events of the thread after ``after_seq``, serialised. Never
        raises."""

    async def check(self) -> dict[str, Any]:
        """The state shown by ``/readyz``."""

    async def close(self) -> None:
        """Stop fan-out and release connections."""
