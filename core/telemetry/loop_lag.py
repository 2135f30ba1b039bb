"""Event-loop lag: how late the loop wakes a task that asked to sleep a fixed interval."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import Histogram


async def watch_loop_lag(histogram: Histogram, interval_s: float = 0.5) -> None:
    while True:
        started = time.perf_counter()
        await asyncio.sleep(interval_s)
        histogram.observe(max(0.0, time.perf_counter() - started - interval_s))
