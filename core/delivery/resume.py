"""Resume, both ends: no gap, no duplicate, and a ``recovered`` flag that tells the truth.

Server side, ``ReplayMerge``: a connection that resumes a thread follows it first (so no
live event is missed), then reads the stored events after ``last_seq``. Live events that
arrive while the replay is read are held by the merge; ``finish`` returns replayed and held
events as one run of seqs in order, each once, and ``take_held`` what arrived while those
were being sent. ``recovered`` is true only when the epoch
matched, the replay was complete, and the seqs run from ``last_seq + 1`` without a gap (a
trimmed log starts later: a gap).

Client side, ``Inbound``: per thread, the epoch and the highest seq handed to the
application. An event at or below it is a duplicate; one beyond the next expected seq is
held until the gap is filled (by a redelivery, a resume or a REST backfill), so the
application sees each event exactly once, in seq order. The first event of a thread the
client has never seen sets its starting point. A thread's epoch only moves forward (to the
one ``chat_accepted`` or ``resumed`` names, or to one never seen in an event); an event of
an epoch it has left is a stale resend, dropped. A client that cannot fill gaps (one that
does not reconnect, like the canary, whose job is to see them) passes them through:
``hold_gaps=False`` hands over every new seq at once, still never a duplicate.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Merged(Generic[T]):
    items: list[T]
    recovered: bool
    last_seq: int


class ReplayMerge(Generic[T]):
    """One resume in progress on one connection: ``hold`` live events, then ``finish``."""

    def __init__(self, after_seq: int, *, epoch_matches: bool) -> None:
        # A seq of another epoch counts in a log that is gone: every live event of the
        # current one is new to the client.
        self.after_seq = after_seq if epoch_matches else 0
        self.epoch_matches = epoch_matches
        self._held: dict[int, T] = {}
        # The size of what is held (as the caller measures it: the connection counts the
        # bytes on the wire against its send-queue bound).
        self.held_size = 0

    def hold(self, seq: int, item: T, size: int = 0) -> None:
        if seq not in self._held:
            self._held[seq] = item
            self.held_size += size

    def finish(self, replayed: Iterable[tuple[int, T]], *, complete: bool) -> Merged[T]:
        """Replayed events (ascending seq) merged with the held live ones.

        Without a matching epoch the replay is not used; the held live events still go out
        (they belong to the thread's current log).
        """
        expected = self.after_seq + 1
        gap = False
        items: list[T] = []
        by_seq: dict[int, T] = dict(replayed) if self.epoch_matches else {}
        for seq, item in self._held.items():
            by_seq.setdefault(seq, item)
        for seq in sorted(by_seq):
            if seq < expected:
                continue
            if seq > expected:
                gap = True
            items.append(by_seq[seq])
            expected = seq + 1
        self._held.clear()
        self.held_size = 0
        recovered = self.epoch_matches and complete and not gap
        return Merged(items, recovered, expected - 1)

    def take_held(self, after_seq: int) -> list[T]:
        """Live events held since ``finish`` (or the last call), past ``after_seq``, in seq
        order: the resume goes on holding while the replay is being sent out."""
        items = [self._held[seq] for seq in sorted(self._held) if seq > after_seq]
        self._held.clear()
        self.held_size = 0
        return items


@dataclass
class ThreadCursor:
    epoch: str | None = None
    # Highest seq handed to the application; None until the thread's first event.
    delivered: int | None = None
    held: dict[int, dict[str, object]] = field(default_factory=dict)
    # Epochs the thread has left: their logs are gone, an event of theirs is a stale resend.
    retired: set[str] = field(default_factory=set)

    @property
    def resume_from(self) -> int:
        """The last seq handed over (0 before any): where a resume, an ack and a backfill
        start from."""
        return self.delivered or 0


class Inbound:
    """What the client hands to the application, per thread: each event once, in order."""

    def __init__(self, *, hold_gaps: bool = True) -> None:
        self.threads: dict[str, ThreadCursor] = {}
        self.duplicates = 0
        self.hold_gaps = hold_gaps

    def follow(self, thread_id: str, epoch: str | None = None) -> ThreadCursor:
        """Follow the thread; ``epoch``, when given, is the server's word on its current
        epoch (``chat_accepted``): the thread moves to it, as with ``rebase``."""
        cursor = self.threads.setdefault(thread_id, ThreadCursor())
        if epoch is not None:
            _move(cursor, epoch)
        return cursor

    def offer(self, event: dict[str, object]) -> list[dict[str, object]]:
        """Take one received event; return the events now ready for the application.

        The thread's epoch only moves forward: an event of an epoch the thread has left (a
        resend from the lost log) is dropped; one of an epoch never seen is the thread's new
        log (lost and started again while the client followed it), whose seqs count from 1.
        """
        thread_id, seq, epoch = str(event["thread_id"]), _seq(event), event.get("epoch")
        cursor = self.follow(thread_id)
        if epoch is not None:
            if str(epoch) in cursor.retired:
                self.duplicates += 1
                return []
            _move(cursor, str(epoch))
        if cursor.delivered is None:
            cursor.delivered = seq - 1
        if seq <= cursor.delivered or seq in cursor.held:
            self.duplicates += 1
            return []
        if not self.hold_gaps:
            cursor.delivered = seq
            return [event]
        cursor.held[seq] = event
        ready: list[dict[str, object]] = []
        while cursor.delivered + 1 in cursor.held:
            cursor.delivered += 1
            ready.append(cursor.held.pop(cursor.delivered))
        return ready

    def rebase(self, thread_id: str, epoch: str) -> None:
        """The server says the thread's log is now ``epoch`` (``resumed``); if that is news,
        its seqs start again from 1 (what a REST backfill from 0 will bring)."""
        self.follow(thread_id, epoch)

    def ack_seq(self, thread_id: str) -> int:
        """What to ack: what the thread resumes from (0 for a thread never seen)."""
        cursor = self.threads.get(thread_id)
        return cursor.resume_from if cursor else 0

    def has_gap(self, thread_id: str) -> bool:
        cursor = self.threads.get(thread_id)
        return bool(cursor and cursor.held)

    def resume_points(self) -> list[tuple[str, str, int]]:
        """``(thread_id, epoch, last_seq)`` for every followed thread whose epoch is known.

        A thread with no event yet resumes from 0 and counts from there: its replay, not
        whichever event happens to arrive first, sets its starting point.
        """
        for cursor in self.threads.values():
            if cursor.epoch is not None and cursor.delivered is None:
                cursor.delivered = 0
        return [
            (thread_id, cursor.epoch, cursor.resume_from)
            for thread_id, cursor in self.threads.items()
            if cursor.epoch is not None
        ]


def _move(cursor: ThreadCursor, epoch: str) -> None:
    """Move the thread to ``epoch``: the one it leaves is retired for good, and when there
    was one, the new log's seqs count from 1 (events held from another epoch go)."""
    if cursor.epoch == epoch:
        return
    if cursor.epoch is not None:
        cursor.retired.add(cursor.epoch)
        cursor.delivered = 0
    # The server's word wins over an epoch an event seemed to retire.
    cursor.retired.discard(epoch)
    cursor.epoch = epoch
    cursor.held = {s: e for s, e in cursor.held.items() if e.get("epoch") == epoch}


def _seq(event: dict[str, object]) -> int:
    seq = event["seq"]
    if not isinstance(seq, int):
        raise TypeError(f"an event's seq must be an int, got {seq!r}")
    return seq
