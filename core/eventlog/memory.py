"""The in-process event log: the embedded default, for a single backend process.

Each thread keeps its newest ``max_events`` events (a deque), and the log keeps at most
``max_threads`` threads, forgetting the least recently appended first. Events older than
``max_age_s`` are dropped from the head when the thread is read or appended to. A thread
whose epoch changes starts over: the old events belong to a log that was lost.

There is no other replica to fan out to: the publisher sends to the local connections
itself and acks arrive here, so ``start`` and ``acked`` have nothing to do.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.eventlog.base import MISSING, Deliver, LogRead, OnAck, contiguous
from core.protocol import AgentEvent


@dataclass
class _ThreadLog:
    epoch: str
    entries: deque[tuple[float, AgentEvent]] = field(default_factory=deque)


class InProcessEventLog:
    backend = "in_process"

    def __init__(
        self,
        *,
        max_events: int,
        max_age_s: float,
        max_threads: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_events = max_events
        self._max_age_s = max_age_s
        self._max_threads = max_threads
        self._clock = clock
        self._threads: OrderedDict[str, _ThreadLog] = OrderedDict()

    async def start(self, deliver: Deliver, on_ack: OnAck) -> None:
        return None

    async def acked(self, thread_id: str, seq: int) -> None:
        return None

    async def append(self, user_id: str, event: AgentEvent) -> bool:
        log = self._threads.get(event.thread_id)
        if log is None or log.epoch != event.epoch:
            log = self._threads[event.thread_id] = _ThreadLog(event.epoch)
        self._threads.move_to_end(event.thread_id)
        if log.entries and event.seq <= log.entries[-1][1].seq:
            return True  # Already logged (the same event appended twice).
        if log.entries and event.seq != log.entries[-1][1].seq + 1:
            log.entries.clear()  # A gap: what came before cannot be replayed without it.
        log.entries.append((self._clock(), event))
        while len(log.entries) > self._max_events:
            log.entries.popleft()
        self._expire(log)
        while len(self._threads) > self._max_threads:
            self._threads.popitem(last=False)
        return True

    async def read(self, thread_id: str, epoch: str, after_seq: int, limit: int) -> LogRead:
        log = self._threads.get(thread_id)
        if log is None or log.epoch != epoch:
            return MISSING
        self._expire(log)
        if not log.entries or log.entries[0][1].seq > after_seq + 1:
            return MISSING  # Trimmed (or never held) the events right after after_seq.
        events = [event for _, event in log.entries if event.seq > after_seq]
        complete = len(events) <= limit and contiguous(events, after_seq, epoch)
        return LogRead(events=events[:limit], complete=complete)

    async def check(self) -> dict[str, Any]:
        return {"ok": True, "backend": self.backend, "threads": len(self._threads)}

    async def close(self) -> None:
        self._threads.clear()

    def _expire(self, log: _ThreadLog) -> None:
        cutoff = self._clock() - self._max_age_s
        while log.entries and log.entries[0][0] < cutoff:
            log.entries.popleft()
