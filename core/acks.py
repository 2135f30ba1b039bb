"""The ack ledger: which emitted events still wait for a client's confirmation.

Pure and clock-free: callers pass ``now``. One ledger serves the whole process; an event is
retired by the first cumulative ack that covers it, whichever of the user's connections
sends it, so ``acked`` never exceeds ``emitted``.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class Retired:
    thread_id: str
    seq: int
    type: str
    run_id: str
    latency_s: float
    counted: bool


@dataclass
class _Pending:
    type: str
    run_id: str
    emitted_at: float
    counted: bool


class AckLedger:
    def __init__(self) -> None:
        # thread -> seq -> pending event, seqs in emission order.
        self._pending: dict[str, OrderedDict[int, _Pending]] = {}
        self._last_seq: dict[str, int] = {}

    def record(
        self,
        thread_id: str,
        seq: int,
        event_type: str,
        run_id: str,
        now: float,
        *,
        counted: bool = True,
    ) -> None:
        """Track an emitted event; ``counted`` is False for traffic kept out of the SLIs."""
        pending = self._pending.setdefault(thread_id, OrderedDict())
        pending[seq] = _Pending(event_type, run_id, now, counted)
        self._last_seq[thread_id] = max(seq, self._last_seq.get(thread_id, 0))

    def last_seq(self, thread_id: str) -> int:
        return self._last_seq.get(thread_id, 0)

    def ack(self, thread_id: str, seq: int, now: float) -> list[Retired]:
        """Retire every pending event of the thread up to ``seq`` (cumulative)."""
        pending = self._pending.get(thread_id)
        retired: list[Retired] = []
        while pending:
            first_seq, entry = next(iter(pending.items()))
            if first_seq > seq:
                break
            pending.popitem(last=False)
            retired.append(_retire(thread_id, first_seq, entry, now))
        if pending is not None and not pending:
            del self._pending[thread_id]
        return retired

    def expire(self, now: float, max_age_s: float) -> list[Retired]:
        """Give up on events unconfirmed for longer than ``max_age_s``; the caller counts them."""
        expired: list[Retired] = []
        for thread_id in list(self._pending):
            pending = self._pending[thread_id]
            while pending:
                first_seq, entry = next(iter(pending.items()))
                if now - entry.emitted_at <= max_age_s:
                    break
                pending.popitem(last=False)
                expired.append(_retire(thread_id, first_seq, entry, now))
            if not pending:
                del self._pending[thread_id]
        return expired

    def pending_count(self) -> int:
        return sum(len(pending) for pending in self._pending.values())


def _retire(thread_id: str, seq: int, entry: _Pending, now: float) -> Retired:
    return Retired(thread_id, seq, entry.type, entry.run_id, now - entry.emitted_at, entry.counted)
