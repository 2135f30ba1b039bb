"""The success criteria of `vigil slo report`, judged from what the sidecar already knows.

Pure: ``judge`` takes the SLO statuses, the increase of a few extra counters over the SLO
window (tracked like the SLOs, so they survive restarts of both processes), the last readiness
probe and the memory assessment, and returns one ``Criterion`` per line of the report. A
criterion with nothing to judge it on is "no data" (``passed`` is None), not a pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sidecar.memory.trend import Assessment
from sidecar.slo.math import WHOLE, SLOStatus
from sidecar.slo.spec import parse_selector
from sidecar.slo.tracker import Track

# Every reason PROTOCOL.md documents for a refused handshake or request.
DOCUMENTED_AUTH_REASONS = (
    "missing_token|malformed_token|invalid_signature|token_expired|token_not_yet_valid|"
    "invalid_audience|invalid_issuer|unsupported_algorithm|missing_claim|user_disabled|"
    "connection_quota|unsupported_protocol|not_ready"
)

ISOLATION = "criteria:isolation_violations"
DB_ERRORS = "criteria:db_errors"
DB_UNCATEGORISED = "criteria:db_errors_uncategorised"
AUTH_FAILURES = "criteria:auth_failures"
AUTH_UNEXPLAINED = "criteria:auth_failures_unexplained"
UNDELIVERED = "criteria:events_undelivered"

TRACKS: tuple[Track, ...] = tuple(
    Track(name, "backend", (parse_selector(selector),))
    for name, selector in (
        (ISOLATION, "vigil_isolation_violations_total"),
        (DB_ERRORS, "vigil_db_errors_total"),
        (DB_UNCATEGORISED, 'vigil_db_errors_total{category=~"unknown|"}'),
        (AUTH_FAILURES, "vigil_auth_failures_total"),
        (AUTH_UNEXPLAINED, f'vigil_auth_failures_total{{reason!~"{DOCUMENTED_AUTH_REASONS}"}}'),
        (UNDELIVERED, "vigil_events_undelivered_total"),
    )
)


@dataclass(frozen=True)
class Criterion:
    name: str
    figure: str
    passed: bool | None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "figure": self.figure, "passed": self.passed}


def _pct(value: float | None) -> str:
    return "no data" if value is None else f"{value * 100:.3f} %"


def _whole(statuses: Sequence[SLOStatus], name: str) -> SLOStatus | None:
    return next((status for status in statuses if status.name == name), None)


def judge(
    statuses: Sequence[SLOStatus],
    counters: Mapping[str, float | None],
    ready: bool | None,
    memory: Assessment | None,
) -> list[Criterion]:
    return [
        _connection_success(_whole(statuses, "connection-success")),
        _five_events(_whole(statuses, "event-delivery"), _whole(statuses, "canary"), counters),
        _db_errors(counters),
        _isolation(counters),
        _tool_visibility(_whole(statuses, "tool-visibility")),
        _configuration(ready),
        _auth(counters),
        _resources(memory),
    ]


def _connection_success(status: SLOStatus | None) -> Criterion:
    ratio = None if status is None else status.sli[WHOLE]
    passed = None if ratio is None else ratio > 0.99
    return Criterion("Connection success > 99 %", _pct(ratio), passed)


def _five_events(
    delivery: SLOStatus | None, canary: SLOStatus | None, counters: Mapping[str, float | None]
) -> Criterion:
    acked = None if delivery is None else delivery.sli[WHOLE]
    runs = None if canary is None else canary.sli[WHOLE]
    undelivered = counters.get(UNDELIVERED)
    figure = (
        f"acked within 2 s {_pct(acked)}; canary runs with all five in order {_pct(runs)}; "
        f"undelivered {'no data' if undelivered is None else f'{undelivered:.0f}'}"
    )
    if acked is None and runs is None:
        return Criterion("All five events delivered with confirmation", figure, None)
    passed = (
        (acked is None or delivery is None or acked >= delivery.objective)
        and (runs is None or canary is None or runs >= canary.objective)
        and not undelivered
    )
    return Criterion("All five events delivered with confirmation", figure, passed)


def _db_errors(counters: Mapping[str, float | None]) -> Criterion:
    total, unknown = counters.get(DB_ERRORS), counters.get(DB_UNCATEGORISED)
    if total is None:
        return Criterion("Database errors categorised", "no data", None)
    figure = f"{total:.0f} errors, {unknown or 0:.0f} uncategorised"
    return Criterion("Database errors categorised", figure, not unknown)


def _isolation(counters: Mapping[str, float | None]) -> Criterion:
    violations = counters.get(ISOLATION)
    if violations is None:
        return Criterion("Zero cross-user contamination", "no data", None)
    return Criterion(
        "Zero cross-user contamination", f"{violations:.0f} events blocked", violations == 0
    )


def _tool_visibility(status: SLOStatus | None) -> Criterion:
    counts = None if status is None else status.counts[WHOLE]
    ratio = None if status is None else status.sli[WHOLE]
    if counts is None or ratio is None:
        return Criterion("Tool visibility 100 %", "no data", None)
    figure = f"{_pct(ratio)} ({counts.good:.0f} of {counts.total:.0f} tool calls confirmed)"
    return Criterion("Tool visibility 100 %", figure, counts.good >= counts.total)


def _configuration(ready: bool | None) -> Criterion:
    if ready is None:
        return Criterion("Configuration errors caught at start-up", "backend not probed", None)
    figure = (
        "settings validated at start-up; backend ready"
        if ready
        else "backend not ready (see /readyz)"
    )
    return Criterion("Configuration errors caught at start-up", figure, ready)


def _auth(counters: Mapping[str, float | None]) -> Criterion:
    total, unexplained = counters.get(AUTH_FAILURES), counters.get(AUTH_UNEXPLAINED)
    if total is None:
        return Criterion("Auth failures explained by reason", "no data", None)
    figure = f"{total:.0f} failures, {unexplained or 0:.0f} without a documented reason"
    return Criterion("Auth failures explained by reason", figure, not unexplained)


def _resources(memory: Assessment | None) -> Criterion:
    if memory is None or memory.rss is None:
        return Criterion("Resource use within limits", "backend memory not sampled", None)
    limit = "no limit" if memory.limit is None else f"limit {memory.limit / 2**20:.0f} MiB"
    growth = memory.slope_bps
    trend = "trend pending" if growth is None else f"growth {growth / 1024:+.1f} KiB/s"
    figure = f"RSS {memory.rss / 2**20:.0f} MiB, {limit}, {trend}, {memory.state}"
    return Criterion("Resource use within limits", figure, memory.state == "ok")
