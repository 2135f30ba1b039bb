"""The memory watch loop: RSS every interval, USS every few, the limit, the trend, the state.

psutil reads run in a worker thread (USS walks /proc/<pid>/smaps, which takes a while for a
large process). A backend that has gone away is looked for again on the next sample; its RSS
history is dropped, since a new process's memory is a new story. When the state turns
critical and draining is enabled, the backend is asked once per episode to drain.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import psutil

from sidecar.memory.cgroup import memory_limit
from sidecar.memory.target import TargetNotFound, TargetSpec, find_target
from sidecar.memory.trend import CRITICAL, UNKNOWN, Assessment, RssWindow, Thresholds
from sidecar.memory.trend import assess as judge
from sidecar.metrics import MemoryView, SidecarMetrics

DrainRequest = Callable[[str], Awaitable[bool]]


@dataclass
class Reading:
    pid: int
    rss: float
    uss: float | None
    limit: float | None


class MemoryWatcher:
    def __init__(
        self,
        target: TargetSpec,
        metrics: SidecarMetrics,
        *,
        thresholds: Thresholds | None = None,
        interval_s: float = 5.0,
        window_s: float = 600.0,
        uss_every: int = 12,
        limit_bytes: int | None = None,
        drain: DrainRequest | None = None,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.target = target
        self.metrics = metrics
        self.thresholds = thresholds or Thresholds()
        self.interval_s = interval_s
        self.uss_every = max(1, uss_every)
        # A limit given by the operator wins over the cgroup's: in a pod, the backend's cgroup
        # is hidden from the sidecar's container, whose own limit is not the backend's.
        self.limit_bytes = limit_bytes
        self.drain = drain
        self.timer = timer
        self.window = RssWindow(window_s)
        self.process: psutil.Process | None = None
        self.latest = Assessment(UNKNOWN, None, None, None, None, ["not sampled yet"])
        self.last_error: str | None = None
        self.uss: float | None = None
        self._samples = 0
        self._drained = False

    async def once(self) -> Assessment:
        try:
            reading = await asyncio.to_thread(self._read, self._samples % self.uss_every == 0)
        except TargetNotFound as exc:
            self.last_error = str(exc)
            self.uss = None
            self.latest = Assessment(UNKNOWN, None, None, None, None, [str(exc)])
            return self.latest
        self._samples += 1
        self.last_error = None
        self.window.add(self.timer(), reading.rss)
        if reading.uss is not None:
            self.uss = reading.uss
        self.latest = judge(list(self.window.points), reading.limit, self.thresholds)
        await self._maybe_drain(self.latest)
        return self.latest

    def _read(self, with_uss: bool) -> Reading:
        process = self.process
        if process is None or not process.is_running():
            self.window.clear()
            process = self.process = find_target(self.target)
        try:
            rss = float(process.memory_info().rss)
            uss = self._uss(process) if with_uss else None
        except (psutil.NoSuchProcess, psutil.AccessDenied) as exc:
            self.process = None
            raise TargetNotFound(f"process {process.pid}: cannot read its memory ({exc})") from exc
        limit = self.limit_bytes if self.limit_bytes is not None else memory_limit(process.pid)
        return Reading(process.pid, rss, uss, limit)

    @staticmethod
    def _uss(process: psutil.Process) -> float | None:
        try:
            return float(process.memory_full_info().uss)
        except psutil.AccessDenied:
            return None  # USS reads smaps, which another user's process may not allow

    def view(self) -> MemoryView:
        a = self.latest
        return MemoryView(a.state, a.rss, self.uss, a.limit, a.slope_bps, a.seconds_to_limit)

    async def _maybe_drain(self, result: Assessment) -> None:
        if result.state != CRITICAL:
            self._drained = False
            return
        if self.drain is None or self._drained:
            return
        self._drained = await self.drain("; ".join(result.reasons) or "memory critical")
        self.metrics.drain_requests.labels("accepted" if self._drained else "failed").inc()
