"""Leak detection, pure: a robust slope of RSS over a sliding window and what it means.

The slope is Theil-Sen's: the median of the slopes between every pair of samples. A single
spike changes at most n - 1 of the n(n-1)/2 pair slopes, so it cannot move the median far
(least squares would follow it). The projected time to the limit is (limit - RSS) / slope.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field
from typing import Any

OK, WARNING, CRITICAL, UNKNOWN = "ok", "warning", "critical", "unknown"
STATES = (OK, WARNING, CRITICAL, UNKNOWN)


def theil_sen(points: list[tuple[float, float]]) -> float | None:
    """The median pairwise slope of (t, value) points; None under 3 points or no time span."""
    slopes = [
        (v2 - v1) / (t2 - t1)
        for i, (t1, v1) in enumerate(points)
        for t2, v2 in points[i + 1 :]
        if t2 != t1
    ]
    if len(points) < 3 or not slopes:
        return None
    return statistics.median(slopes)


@dataclass(frozen=True)
class Thresholds:
    """When memory is a warning or critical (all configurable)."""

    warning_ratio: float = 0.80  # RSS over this share of the limit
    critical_ratio: float = 0.90
    warning_horizon_s: float = 2 * 3600.0  # projected to reach the limit within this
    critical_horizon_s: float = 15 * 60.0
    warning_growth_bps: float = 16 * 1024.0  # growth alone, with or without a limit
    critical_growth_bps: float = 1024 * 1024.0
    min_points: int = 10  # no trend judged on fewer samples ...
    min_span_s: float = 60.0  # ... or a shorter stretch of time


@dataclass(frozen=True)
class Assessment:
    state: str
    rss: float | None
    limit: float | None
    slope_bps: float | None
    seconds_to_limit: float | None
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "rss_bytes": self.rss,
            "limit_bytes": self.limit,
            "growth_bytes_per_second": self.slope_bps,
            "seconds_to_limit": self.seconds_to_limit,
            "reasons": self.reasons,
        }


class RssWindow:
    """The (t, rss) samples of the last ``window_s`` seconds (times from any clock)."""

    def __init__(self, window_s: float, max_points: int = 240) -> None:
        self.window_s = window_s
        self.points: deque[tuple[float, float]] = deque(maxlen=max_points)

    def add(self, t: float, rss: float) -> None:
        self.points.append((t, rss))
        while self.points and self.points[0][0] < t - self.window_s:
            self.points.popleft()

    def clear(self) -> None:
        self.points.clear()


def assess(points: list[tuple[float, float]], limit: float | None, th: Thresholds) -> Assessment:
    if not points:
        return Assessment(UNKNOWN, None, limit, None, None, ["no sample of the backend yet"])
    rss = points[-1][1]
    enough = len(points) >= th.min_points and points[-1][0] - points[0][0] >= th.min_span_s
    slope = theil_sen(points) if enough else None
    to_limit = None
    if limit is not None and slope is not None and slope > 0:
        to_limit = max(0.0, (limit - rss) / slope)
    reasons: list[str] = []
    critical = warning = False
    if limit is not None:
        share = rss / limit
        if share >= th.critical_ratio:
            critical = True
            reasons.append(f"RSS at {share:.0%} of the limit")
        elif share >= th.warning_ratio:
            warning = True
            reasons.append(f"RSS at {share:.0%} of the limit")
    if to_limit is not None:
        if to_limit <= th.critical_horizon_s:
            critical = True
            reasons.append(f"limit reached in {to_limit:.0f} s at this growth")
        elif to_limit <= th.warning_horizon_s:
            warning = True
            reasons.append(f"limit reached in {to_limit:.0f} s at this growth")
    if slope is not None:
        if slope >= th.critical_growth_bps:
            critical = True
            reasons.append(f"growing {slope:.0f} B/s")
        elif slope >= th.warning_growth_bps:
            warning = True
            reasons.append(f"growing {slope:.0f} B/s")
    state = CRITICAL if critical else WARNING if warning else OK
    return Assessment(state, rss, limit, slope, to_limit, reasons)
