"""The in-process event log: the embedded default, for a single backend process.

Each thread keeps its newest ``max_events`` events (a deque), none older than ``max_age_s``
(dropped from the head when the thread is read or appended to). Across threads the log holds
at most ``max_threads`` threads and ``max_bytes`` bytes: past either bound it forgets whole
threads, least recently appended first, and a thread whose newest event has expired is
forgotten as soon as it is the least recent. Each forgotten thread is reported to
``on_evict`` with the bound that forced it (``threads``, ``bytes`` or ``age``); a resume of
it reads the database. A thread whose epoch changes starts over: the old events belong to a
log that was lost.

Events are held as their JSON (about a third of the memory the model objects take), which
is what a resume sends: a read hands that text on with the seq held beside it, never
parsing it again. Each is charged its JSON length plus
``ENTRY_OVERHEAD_BYTES`` for its bookkeeping, so ``max_bytes`` is close to what the process
really holds.

There is no other replica to fan out to: the publisher sends to the local connections
itself and acks arrive here, so ``start`` and ``acked`` have nothing to do.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import TypeAdapter

from core.eventlog.base import MISSING, Deliver, LogRead, OnAck, contiguous
from core.protocol import AgentEvent, EncodedEvent

# Per held event, beside its JSON: the entry tuple, its timestamp and seq, the bytes object's
# header and the deque slot (measured with tracemalloc on CPython 3.11: about 160 bytes).
ENTRY_OVERHEAD_BYTES = 160

EvictReason = Literal["threads", "bytes", "age"]
EVICT_REASONS: tuple[EvictReason, ...] = ("threads", "bytes", "age")
# Called with the bound that made the log forget a whole thread; the app counts it.
OnEvict = Callable[[EvictReason], None]

_CODEC: TypeAdapter[AgentEvent] = TypeAdapter(AgentEvent)


def _ignore(reason: EvictReason) -> None:
    return None


@dataclass
class _ThreadLog:
    epoch: str
    # (appended at, seq, the event's JSON), oldest first.
    entries: deque[tuple[float, int, bytes]] = field(default_factory=deque)
    charged: int = 0

    @property
    def newest_seq(self) -> int | None:
        return self.entries[-1][1] if self.entries else None

    def push(self, at: float, seq: int, payload: bytes) -> int:
        self.entries.append((at, seq, payload))
        return self._charge(len(payload) + ENTRY_OVERHEAD_BYTES)

    def drop_oldest(self) -> int:
        _, _, payload = self.entries.popleft()
        return self._charge(-(len(payload) + ENTRY_OVERHEAD_BYTES))

    def expire(self, cutoff: float) -> int:
        freed = 0
        while self.entries and self.entries[0][0] < cutoff:
            freed += self.drop_oldest()
        return freed

    def clear(self) -> int:
        self.entries.clear()
        return self._charge(-self.charged)

    def _charge(self, delta: int) -> int:
        self.charged += delta
        return delta


class InProcessEventLog:
    backend = "in_process"

    def __init__(  # noqa: PLR0913 - each bound is its own setting
        self,
        *,
        max_events: int,
        max_age_s: float,
        max_threads: int,
        max_bytes: int,
        on_evict: OnEvict = _ignore,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_events = max_events
        self._max_age_s = max_age_s
        self._max_threads = max_threads
        self._max_bytes = max_bytes
        self._on_evict = on_evict
        self._clock = clock
        self._threads: OrderedDict[str, _ThreadLog] = OrderedDict()
        self._bytes = 0

    @property
    def bytes_held(self) -> int:
        return self._bytes

    async def start(self, deliver: Deliver, on_ack: OnAck) -> None:
        return None

    async def acked(self, thread_id: str, seq: int) -> None:
        return None

    async def append(self, user_id: str, event: AgentEvent) -> bool:
        now = self._clock()
        log = self._threads.get(event.thread_id)
        if log is None or log.epoch != event.epoch:
            if log is not None:
                self._bytes += log.clear()
            log = self._threads[event.thread_id] = _ThreadLog(event.epoch)
        newest = log.newest_seq
        if newest is not None and event.seq <= newest:
            return True  # Already logged (the same event appended twice).
        if newest is not None and event.seq != newest + 1:
            self._bytes += log.clear()  # A gap: what came before cannot be replayed without it.
        self._threads.move_to_end(event.thread_id)
        self._bytes += log.push(now, event.seq, _CODEC.dump_json(event))
        while len(log.entries) > self._max_events:
            self._bytes += log.drop_oldest()
        self._bytes += log.expire(now - self._max_age_s)
        self._forget_past_bounds(now)
        while self._bytes > self._max_bytes and log.entries:
            self._bytes += log.drop_oldest()  # The only thread left is larger than the bound.
        return True

    async def append_all(self, events: Sequence[tuple[str, AgentEvent]]) -> list[bool]:
        return [await self.append(user_id, event) for user_id, event in events]

    async def read(self, thread_id: str, epoch: str, after_seq: int, limit: int) -> LogRead:
        log = self._threads.get(thread_id)
        if log is None or log.epoch != epoch:
            return MISSING
        self._bytes += log.expire(self._clock() - self._max_age_s)
        if not log.entries or log.entries[0][1] > after_seq + 1:
            return MISSING  # Trimmed (or never held) the events right after after_seq.
        held = [(seq, payload) for _, seq, payload in log.entries if seq > after_seq]
        events = [EncodedEvent(seq, epoch, payload.decode()) for seq, payload in held[:limit]]
        complete = len(held) <= limit and contiguous(events, after_seq, epoch)
        return LogRead(events=events, complete=complete)

    async def check(self) -> dict[str, Any]:
        return {
            "ok": True,
            "backend": self.backend,
            "threads": len(self._threads),
            "bytes": self._bytes,
            "max_bytes": self._max_bytes,
        }

    async def close(self) -> None:
        self._threads.clear()
        self._bytes = 0

    def _forget_past_bounds(self, now: float) -> None:
        """Forget the least recently appended threads while the log is past a bound. The
        thread appended last is never forgotten here; ``append`` trims it instead."""
        cutoff = now - self._max_age_s
        while len(self._threads) > 1:
            thread_id, oldest = next(iter(self._threads.items()))
            reason: EvictReason
            if len(self._threads) > self._max_threads:
                reason = "threads"
            elif self._bytes > self._max_bytes:
                reason = "bytes"
            elif not oldest.entries or oldest.entries[-1][0] < cutoff:
                reason = "age"
            else:
                return
            del self._threads[thread_id]
            self._bytes -= oldest.charged
            self._on_evict(reason)
