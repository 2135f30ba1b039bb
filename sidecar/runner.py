"""The sidecar's loops, wired: probes, scrape + SLO evaluation, canary, memory watch, traces.

Each loop runs on its own cadence and every iteration has a time budget, so a slow or dead
backend delays nothing else and never stops the sidecar's own endpoints. Errors the sidecar
expects (``SidecarError``: a failed scrape, an unreadable store, a vanished process) are
logged; anything else is caught at the loop boundary, logged with its traceback and counted in
``vigil_sidecar_loop_errors_total{loop}``, and the loop goes on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from prometheus_client import CollectorRegistry

from core.telemetry.logging import get_logger
from sidecar import Clock, SidecarError, criteria
from sidecar.canary.run import DEADLINE_S, CanaryLoop, TokenSource
from sidecar.memory.target import TargetSpec
from sidecar.memory.trend import Thresholds
from sidecar.memory.watch import MemoryWatcher
from sidecar.metrics import MemoryView, SidecarMetrics
from sidecar.probes import ProbeLoop
from sidecar.scrape import ScrapeError, registry_samples, scrape
from sidecar.slo.math import WINDOWS, SLOStatus
from sidecar.slo.samples import SampleStore
from sidecar.slo.spec import load_slos
from sidecar.slo.tracker import SLOTracker
from sidecar.traces import TracesLoop

log = get_logger(__name__)
DRAIN_PATH = "/admin/drain"
# The backend closes a connection left idle for 5 s (uvicorn's keep-alive timeout); a request
# sent on it at that moment fails ("Server disconnected", a reset), and with a probe every
# 5 s that happened to a scrape every few minutes. Idle connections are dropped well before.
KEEPALIVE_EXPIRY_S = 2.0


@dataclass(frozen=True)
class SidecarConfig:
    target_url: str = "http://127.0.0.1:8000"
    slo_file: Path | None = None
    state_dir: Path = Path(".vigil/sidecar")
    scrape_interval_s: float = 15.0
    probe_interval_s: float = 5.0
    canary_interval_s: float = 30.0
    memory_interval_s: float = 5.0
    http_timeout_s: float = 2.0
    canary_deadline_s: float = DEADLINE_S
    memory_target: TargetSpec = field(default_factory=TargetSpec)
    memory_window_s: float = 600.0
    memory_limit_bytes: int | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)
    drain_on_critical: bool = False

    @property
    def ws_url(self) -> str:
        return self.target_url.rstrip("/").replace("http", "ws", 1) + "/ws"

    def with_local_target(self) -> SidecarConfig:
        """When no way to find the backend was given, look for the target URL's listener."""
        target = self.memory_target
        if target.pid or target.pid_file or target.name:
            return self
        url = urlsplit(self.target_url)
        local = TargetSpec(listen_host=url.hostname, listen_port=url.port or 80)
        return SidecarConfig(**{**self.__dict__, "memory_target": local})


class Sidecar:
    def __init__(
        self,
        config: SidecarConfig,
        *,
        tokens: TokenSource | None = None,
        clock: Clock = time.time,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.config = config = config.with_local_target()
        self.clock = clock
        self.slo_config = load_slos(config.slo_file)
        config.state_dir.mkdir(parents=True, exist_ok=True)
        retention = max(self.slo_config.longest_window_s, *WINDOWS.values())
        self.store = SampleStore(config.state_dir / "samples.db", retention)
        self.tracker = SLOTracker(self.slo_config, self.store, clock, criteria.TRACKS)
        self.statuses: list[SLOStatus] = []
        self.counters: dict[str, float | None] = {}
        objectives = {slo.name: slo.objective for slo in self.slo_config.slos}
        self.metrics = SidecarMetrics(
            registry, lambda: self.statuses, lambda: objectives, self._memory_view
        )
        self.http = httpx.AsyncClient(
            timeout=config.http_timeout_s,
            limits=httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY_S),
        )
        base = config.target_url.rstrip("/")
        self.probes = ProbeLoop(
            self.http,
            base,
            self.metrics,
            interval_s=config.probe_interval_s,
            timeout_s=config.http_timeout_s,
        )
        self.tokens = tokens
        self.canary = (
            CanaryLoop(
                config.ws_url,
                tokens,
                self.metrics,
                interval_s=config.canary_interval_s,
                deadline_s=config.canary_deadline_s,
            )
            if tokens is not None
            else None
        )
        self.traces = (
            TracesLoop(self.http, base, tokens, timeout_s=config.http_timeout_s, clock=self.clock)
            if tokens is not None
            else None
        )
        self.memory = MemoryWatcher(
            config.memory_target,
            self.metrics,
            thresholds=config.thresholds,
            interval_s=config.memory_interval_s,
            window_s=config.memory_window_s,
            limit_bytes=config.memory_limit_bytes,
            drain=self.request_drain if config.drain_on_critical else None,
        )
        self.last_scrape: dict[str, Any] = {"at": None, "ok": None, "error": None}
        self._tasks: list[asyncio.Task[None]] = []

    def _memory_view(self) -> MemoryView:
        return self.memory.view()

    async def start(self) -> None:
        self.evaluate()
        loops: list[tuple[str, float, float, Callable[[], Awaitable[Any]]]] = [
            (
                "probes",
                self.config.probe_interval_s,
                self.config.http_timeout_s + 1,
                self.probes.once,
            ),
            (
                "slo",
                self.config.scrape_interval_s,
                self.config.http_timeout_s + 5,
                self.scrape_once,
            ),
            ("memory", self.config.memory_interval_s, 30.0, self.memory.once),
        ]
        if self.canary is not None:
            budget = self.config.canary_deadline_s + 10
            loops.append(("canary", self.config.canary_interval_s, budget, self.canary.once))
        if self.traces is not None:
            budget = self.config.http_timeout_s + 1
            loops.append(("traces", self.config.scrape_interval_s, budget, self.traces.once))
        for name, interval, budget, body in loops:
            self._tasks.append(asyncio.create_task(self._every(name, interval, budget, body)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.http.aclose()
        self.store.close()

    async def scrape_once(self) -> None:
        now = self.clock()
        try:
            samples = await scrape(
                self.http,
                self.config.target_url.rstrip("/") + "/metrics",
                self.config.http_timeout_s,
            )
        except ScrapeError as exc:
            self.metrics.scrapes.labels("error").inc()
            self.last_scrape = {"at": now, "ok": False, "error": str(exc)}
            log.warning("scrape_failed", error=str(exc))
        else:
            self.metrics.scrapes.labels("ok").inc()
            self.last_scrape = {"at": now, "ok": True, "error": None}
            self.tracker.observe("backend", samples, now)
        # The sidecar's own counters (the canary) are sampled whether or not the backend answered.
        self.tracker.observe("sidecar", registry_samples(self.metrics.registry), now)
        self.evaluate()

    def evaluate(self) -> None:
        self.statuses = self.tracker.evaluate()
        window = self.slo_config.longest_window_s
        self.counters = {t.name: self.tracker.increase(t.name, window) for t in criteria.TRACKS}

    async def request_drain(self, reason: str) -> bool:
        """Ask the backend to turn unready (POST /admin/drain); True when it agreed."""
        url = self.config.target_url.rstrip("/") + DRAIN_PATH
        headers = {"Authorization": f"Bearer {self.tokens()}"} if self.tokens else {}
        try:
            response = await self.http.post(url, json={"reason": reason}, headers=headers)
        except httpx.HTTPError as exc:
            log.error("drain_request_failed", error=f"{type(exc).__name__}: {exc}")
            return False
        log.warning("drain_requested", status=response.status_code, reason=reason)
        return response.status_code in (200, 202)

    async def _every(
        self, name: str, interval: float, budget: float, body: Callable[[], Awaitable[Any]]
    ) -> None:
        next_run = time.monotonic()
        while True:
            try:
                async with asyncio.timeout(budget):
                    await body()
            except TimeoutError:
                self.metrics.loop_errors.labels(name).inc()
                log.warning("loop_over_budget", loop=name, budget_s=budget)
            except SidecarError as exc:
                log.warning("loop_failed", loop=name, error=str(exc))
            except Exception:  # noqa: BLE001 - one bad iteration must not end the loop (logged, counted)
                self.metrics.loop_errors.labels(name).inc()
                log.exception("loop_crashed", loop=name)
            next_run = max(next_run + interval, time.monotonic())
            await asyncio.sleep(next_run - time.monotonic())

    def document(self) -> dict[str, Any]:
        """The JSON of /slo: SLOs, success criteria, probes, canary, memory, traces."""
        readyz = self.probes.latest.get("readyz")
        return {
            "generated_at": self.clock(),
            "target_url": self.config.target_url,
            "slo_file": self.slo_config.origin,
            "slos": [status.as_dict() for status in self.statuses],
            "criteria": [
                c.as_dict()
                for c in criteria.judge(
                    self.statuses,
                    self.counters,
                    None if readyz is None else readyz.up,
                    self.memory.latest,
                )
            ],
            "probes": {name: result.as_dict() for name, result in self.probes.latest.items()},
            "canary": {
                "enabled": self.canary is not None,
                "recent": [] if self.canary is None else [r.as_dict() for r in self.canary.recent],
            },
            "memory": {
                **self.memory.latest.as_dict(),
                "uss_bytes": self.memory.uss,
                "target": self.config.memory_target.describe(),
                "error": self.memory.last_error,
                "thresholds": self.config.thresholds.__dict__,
            },
            "scrape": self.last_scrape,
            "traces": {"enabled": False} if self.traces is None else self.traces.as_dict(),
        }
