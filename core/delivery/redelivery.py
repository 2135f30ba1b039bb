"""When an unacked event is sent again, and when it is given up.

An event first sent at ``t`` is due for an ack at ``t + ack_timeout_s``. Each time it is
still unacked when due, it is sent again and its next deadline is one more timeout away,
the timeout growing by ``backoff`` each time (``backoff=1`` is a fixed schedule). After
``max_redeliveries`` resends, the next missed deadline gives it up with a reason:

- ``ack_timeout``: some connection was handed the event and no client confirmed it;
- ``no_connection``: no connection of the owner followed the thread at any attempt
  (the client is away; the event waits in the log for its resume);
- ``window_full``: more than ``max_pending`` events awaited an ack at once, and this one
  was the oldest (a bound on memory when clients stop acking en masse).

Pure: ``Redelivery.tick(now)`` returns the decisions; the I/O layer acts on them.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.delivery.window import AckWindow, Pending, Retired

REASON_ACK_TIMEOUT = "ack_timeout"
REASON_NO_CONNECTION = "no_connection"
REASON_WINDOW_FULL = "window_full"
DEFAULT_MAX_PENDING = 100_000


@dataclass(frozen=True)
class RetrySchedule:
    ack_timeout_s: float
    max_redeliveries: int = 3
    backoff: float = 2.0

    def __post_init__(self) -> None:
        if self.ack_timeout_s <= 0:
            raise ValueError("ack_timeout_s must be positive")
        if self.max_redeliveries < 0:
            raise ValueError("max_redeliveries must not be negative")
        if self.backoff < 1:
            raise ValueError("backoff must be at least 1")

    def timeout(self, redeliveries: int) -> float:
        """How long to wait for an ack after the send numbered ``redeliveries`` (0: first)."""
        return self.ack_timeout_s * self.backoff**redeliveries

    def give_up_after(self) -> float:
        """Time from the first send to giving up, when every resend happens when due."""
        return sum(self.timeout(n) for n in range(self.max_redeliveries + 1))


@dataclass(frozen=True)
class Redeliver:
    entry: Pending


@dataclass(frozen=True)
class GiveUp:
    retired: Retired


Decision = Redeliver | GiveUp


class Redelivery:
    """The window plus its schedule: record sends, retire acks, decide resends."""

    def __init__(
        self, window: AckWindow, schedule: RetrySchedule, max_pending: int = DEFAULT_MAX_PENDING
    ) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self.window = window
        self.schedule = schedule
        self.max_pending = max_pending

    def sent(
        self,
        *,
        thread_id: str,
        seq: int,
        event_type: str,
        run_id: str,
        user_id: str,
        now: float,
        reached: bool,
        counted: bool = True,
        tool: str | None = None,
        payload: object = None,
    ) -> Pending:
        """An event was emitted (``reached``: handed to at least one connection)."""
        entry = Pending(
            thread_id=thread_id,
            seq=seq,
            type=event_type,
            run_id=run_id,
            user_id=user_id,
            emitted_at=now,
            due_at=now + self.schedule.timeout(0),
            counted=counted,
            tool=tool,
            payload=payload,
            reached=reached,
        )
        self.window.record(entry)
        return entry

    def overflow(self, now: float) -> list[GiveUp]:
        """Give up the oldest events while more than ``max_pending`` are pending."""
        given_up: list[GiveUp] = []
        while self.window.pending_count() > self.max_pending:
            oldest = self.window.oldest()
            assert oldest is not None
            given_up.append(GiveUp(self.window.give_up(oldest, now, REASON_WINDOW_FULL)))
        return given_up

    def acked(self, thread_id: str, seq: int, now: float) -> list[Retired]:
        return self.window.ack(thread_id, seq, now)

    def tick(self, now: float) -> list[Decision]:
        """Every overdue event is either resent (and rescheduled) or given up."""
        decisions: list[Decision] = []
        for entry in self.window.due(now):
            if entry.redeliveries >= self.schedule.max_redeliveries:
                reason = REASON_ACK_TIMEOUT if entry.reached else REASON_NO_CONNECTION
                decisions.append(GiveUp(self.window.give_up(entry, now, reason)))
                continue
            entry.redeliveries += 1
            entry.due_at = now + self.schedule.timeout(entry.redeliveries)
            decisions.append(Redeliver(entry))
        return decisions

    @staticmethod
    def redelivered(entry: Pending, reached: bool) -> None:
        """Record whether the resend of ``entry`` was handed to any connection."""
        entry.reached = entry.reached or reached
