"""Where a resume's events come from: the event log first, the database when the log cannot
vouch for the whole range (trimmed, expired, another epoch, a gap, Redis unreachable)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.db.records import ThreadRecord
from core.db.repository import Repository
from core.eventlog.base import EventLog, contiguous
from core.protocol import EncodedEvent, parse_events


@dataclass(frozen=True)
class Replay:
    """The events after ``after_seq``, in order, serialised. ``complete`` is true when they
    are every stored event of the thread after ``after_seq``, with no gap, in the thread's
    epoch."""

    events: list[EncodedEvent]
    complete: bool
    source: Literal["log", "database"]


async def replay_events(
    event_log: EventLog,
    repository: Repository,
    *,
    user_id: str,
    thread: ThreadRecord,
    after_seq: int,
    limit: int,
) -> Replay:
    """``thread`` was read from the database before the caller started following it, so
    whatever the log returns must reach at least ``thread.last_seq`` to be trusted.
    Raises ``DatabaseError`` only when the log falls short and the database fails too."""
    read = await event_log.read(thread.id, thread.epoch, after_seq, limit)
    newest = read.last_seq if read.last_seq is not None else after_seq
    if read.complete and newest >= thread.last_seq:
        return Replay(read.events, complete=True, source="log")
    stored = await repository.list_event_payloads(user_id, thread.id, after_seq, limit + 1)
    events = parse_events(stored or [])
    complete = len(events) <= limit and contiguous(events, after_seq, thread.epoch)
    encoded = [EncodedEvent.of(event) for event in events[:limit]]
    return Replay(encoded, complete=complete, source="database")
