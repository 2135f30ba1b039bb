"""What a load run measured, as plain arithmetic: no sockets, no clocks.

The users report each finished run (its chat-to-``agent_completed`` latency and status),
each received event (its emit time, the envelope's ``ts``, and the local receive time) and
each error by kind; ``Recorder.summary`` turns that into rates and percentiles.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

PERCENTILES = (50.0, 90.0, 99.0)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank percentile ``q`` (0 < q <= 100) of ``values``; None when empty."""
    if not 0 < q <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {q}")
    if not values:
        return None
    ordered = sorted(values)
    rank = math.ceil(q / 100 * len(ordered))
    return ordered[max(rank, 1) - 1]


def emitted_at(ts: str) -> float:
    """The POSIX time of an event envelope's ISO-8601 ``ts``."""
    return datetime.fromisoformat(ts).timestamp()


@dataclass(frozen=True)
class Distribution:
    count: int
    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None

    @classmethod
    def of(cls, values_s: Sequence[float]) -> Distribution:
        """Milliseconds, from values in seconds."""
        ms = [v * 1000.0 for v in values_s]
        p50, p90, p99 = (percentile(ms, q) for q in PERCENTILES)
        return cls(len(ms), p50, p90, p99, max(ms) if ms else None)

    def as_dict(self) -> dict[str, Any]:
        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 3)

        return {
            "count": self.count,
            "p50": rounded(self.p50),
            "p90": rounded(self.p90),
            "p99": rounded(self.p99),
            "max": rounded(self.max),
        }


@dataclass(frozen=True)
class Summary:
    users: int
    elapsed_s: float
    runs_completed: int
    runs_not_completed: int
    events: int
    run_latency_ms: Distribution
    delivery_latency_ms: Distribution
    errors: dict[str, int]

    @property
    def runs_per_s(self) -> float:
        return self.runs_completed / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def events_per_s(self) -> float:
        return self.events / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "users": self.users,
            "elapsed_s": round(self.elapsed_s, 3),
            "runs_completed": self.runs_completed,
            "runs_not_completed": self.runs_not_completed,
            "runs_per_s": round(self.runs_per_s, 2),
            "events": self.events,
            "events_per_s": round(self.events_per_s, 2),
            "run_latency_ms": self.run_latency_ms.as_dict(),
            "delivery_latency_ms": self.delivery_latency_ms.as_dict(),
            "errors": dict(sorted(self.errors.items())),
        }


@dataclass
class Recorder:
    """Collects what the simulated users saw. Single-threaded (one event loop)."""

    run_latencies_s: list[float] = field(default_factory=list)
    delivery_latencies_s: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    runs_completed: int = 0
    runs_not_completed: int = 0
    events: int = 0

    @property
    def runs_finished(self) -> int:
        return self.runs_completed + self.runs_not_completed

    def event_received(self, emitted_s: float, received_s: float) -> None:
        """One event handed to the user; both times on the POSIX clock. A negative
        difference (clocks of two machines) is kept: it shows the skew instead of hiding it."""
        self.events += 1
        self.delivery_latencies_s.append(received_s - emitted_s)

    def run_finished(self, latency_s: float, status: str, error_reason: str | None) -> None:
        """A run ended with its ``agent_completed``; only ``completed`` counts as done, the
        rest are errors of kind ``run_<status>`` (with the ``agent_error`` reason if any)."""
        if status == "completed":
            self.runs_completed += 1
            self.run_latencies_s.append(latency_s)
            return
        self.runs_not_completed += 1
        kind = f"run_{status}"
        self.error(f"{kind}:{error_reason}" if error_reason else kind)

    def error(self, kind: str) -> None:
        self.errors[kind] += 1

    def summary(self, users: int, elapsed_s: float) -> Summary:
        return Summary(
            users=users,
            elapsed_s=elapsed_s,
            runs_completed=self.runs_completed,
            runs_not_completed=self.runs_not_completed,
            events=self.events,
            run_latency_ms=Distribution.of(self.run_latencies_s),
            delivery_latency_ms=Distribution.of(self.delivery_latencies_s),
            errors=dict(self.errors),
        )
