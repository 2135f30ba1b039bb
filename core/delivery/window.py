"""The ack window: every emitted event that still waits for a client's confirmation.

The one delivery tracker of the process. Pure and clock-free: callers pass ``now``. An
event is retired by the first cumulative ack that covers it, whichever of the owner's
connections sends it, so an event is acked at most once and ``acked`` never exceeds
``emitted``. A thread is forgotten as soon as nothing of it is pending, so the window's
size is the number of unacked events, not the number of threads ever seen; ``oldest``
tells the caller what to give up first when even that is too many.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass
class Pending:
    """One unacked event. ``payload`` is what the I/O layer sends again (opaque here)."""

    thread_id: str
    seq: int
    type: str
    run_id: str
    user_id: str
    emitted_at: float
    due_at: float
    counted: bool = True
    tool: str | None = None
    payload: object = None
    redeliveries: int = 0
    # Whether any connection was handed the event (first send or a redelivery).
    reached: bool = False


@dataclass(frozen=True)
class Retired:
    """An event that left the window: acked (``reason`` None) or given up (``reason``)."""

    thread_id: str
    seq: int
    type: str
    run_id: str
    tool: str | None
    counted: bool
    latency_s: float
    redeliveries: int
    reason: str | None = None

    @classmethod
    def of(cls, entry: Pending, now: float, reason: str | None = None) -> Retired:
        return cls(
            entry.thread_id,
            entry.seq,
            entry.type,
            entry.run_id,
            entry.tool,
            entry.counted,
            now - entry.emitted_at,
            entry.redeliveries,
            reason,
        )


class AckWindow:
    def __init__(self) -> None:
        # thread -> seq -> pending event, and every pending event in the order recorded.
        self._threads: dict[str, dict[int, Pending]] = {}
        self._order: dict[tuple[str, int], Pending] = {}

    def record(self, entry: Pending) -> None:
        self._threads.setdefault(entry.thread_id, {})[entry.seq] = entry
        self._order[(entry.thread_id, entry.seq)] = entry

    def last_seq(self, thread_id: str) -> int:
        """The highest pending seq of the thread, 0 when nothing of it is pending."""
        pending = self._threads.get(thread_id)
        return max(pending) if pending else 0

    def ack(self, thread_id: str, seq: int, now: float) -> list[Retired]:
        """Retire every pending event of the thread up to ``seq`` (cumulative)."""
        pending = self._threads.get(thread_id)
        if not pending:
            return []
        covered = [s for s in pending if s <= seq]
        retired = [Retired.of(pending.pop(s), now) for s in covered]
        for s in covered:
            del self._order[(thread_id, s)]
        if not pending:
            del self._threads[thread_id]
        return retired

    def give_up(self, entry: Pending, now: float, reason: str) -> Retired:
        """Remove one pending event without an ack; the caller counts it as undelivered."""
        pending = self._threads[entry.thread_id]
        del pending[entry.seq]
        del self._order[(entry.thread_id, entry.seq)]
        if not pending:
            del self._threads[entry.thread_id]
        return Retired.of(entry, now, reason)

    def oldest(self) -> Pending | None:
        """The pending event recorded first."""
        return next(iter(self._order.values()), None)

    def due(self, now: float) -> list[Pending]:
        """Pending events whose ack is overdue, oldest deadline first (then thread order)."""
        overdue = [entry for entry in self if entry.due_at <= now]
        overdue.sort(key=lambda entry: (entry.due_at, entry.thread_id, entry.seq))
        return overdue

    def __iter__(self) -> Iterator[Pending]:
        return iter(list(self._order.values()))

    def pending_count(self) -> int:
        return len(self._order)

    def thread_count(self) -> int:
        """Threads with an event pending: the window's size, like ``pending_count``."""
        return len(self._threads)
