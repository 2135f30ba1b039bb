"""The sidecar's own instruments, on a registry made for each app (ARCHITECTURE.md names).

The ``vigil_slo_*`` families come from a collector that reads the latest SLO evaluation at
scrape time, so a window with no data is simply absent, never NaN and never stale.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from sidecar.slo.math import SLOStatus

# The canary's SLO threshold (15 s for the whole run) is a bucket bound.
CANARY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30)
MEMORY_STATES = ("ok", "warning", "critical", "unknown")


class SidecarMetrics:
    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        slo_statuses: Callable[[], Sequence[SLOStatus]] = tuple,
        slo_objectives: Callable[[], dict[str, float]] = dict,
        memory: Callable[[], MemoryView | None] = lambda: None,
    ) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.probe_up = Gauge(
            "vigil_probe_up", "1 when the probe succeeded.", ["probe"], registry=r
        )
        self.probe_duration = Gauge(
            "vigil_probe_duration_seconds", "Duration of the last probe.", ["probe"], registry=r
        )
        self.canary_runs = Counter(
            "vigil_canary_runs",
            "Canary runs by outcome and the phase blamed (none for a success).",
            ["outcome", "phase"],
            registry=r,
        )
        self.canary_phase = Histogram(
            "vigil_canary_phase_seconds",
            "Time of each canary phase (handshake to agent_completed, and the whole run).",
            ["phase"],
            buckets=CANARY_BUCKETS,
            registry=r,
        )
        self.drain_requests = Counter(
            "vigil_sidecar_drain_requests",
            "Drain requests sent to the backend, by result.",
            ["result"],
            registry=r,
        )
        self.scrapes = Counter(
            "vigil_sidecar_scrapes", "Scrapes of the backend by outcome.", ["outcome"], registry=r
        )
        self.loop_errors = Counter(
            "vigil_sidecar_loop_errors",
            "Unexpected errors caught at a loop boundary, by loop.",
            ["loop"],
            registry=r,
        )
        ProcessCollector(registry=r)
        r.register(_SLOCollector(slo_statuses, slo_objectives))
        r.register(_MemoryCollector(memory))


@dataclass(frozen=True)
class MemoryView:
    """What the memory watch last saw; a value it does not know is None and not exported."""

    state: str
    rss: float | None = None
    uss: float | None = None
    limit: float | None = None
    growth_bps: float | None = None
    seconds_to_limit: float | None = None


class _MemoryCollector(Collector):
    def __init__(self, view: Callable[[], MemoryView | None]) -> None:
        self._view = view

    def collect(self) -> Iterator[Metric]:
        view = self._view()
        if view is None:
            return
        memory = GaugeMetricFamily(
            "vigil_target_memory_bytes", "The backend's memory.", labels=["kind"]
        )
        for kind, value in (("rss", view.rss), ("uss", view.uss)):
            if value is not None:
                memory.add_metric([kind], value)
        yield memory
        singles = (
            ("vigil_target_memory_limit_bytes", "The backend's memory limit (cgroup).", view.limit),
            (
                "vigil_target_memory_growth_bytes_per_second",
                "Robust (Theil-Sen) slope of the backend's RSS over the trend window.",
                view.growth_bps,
            ),
            (
                "vigil_target_memory_seconds_to_limit",
                "Projected seconds until RSS reaches the limit at the current growth.",
                view.seconds_to_limit,
            ),
        )
        for name, help_text, value in singles:
            if value is not None:
                yield GaugeMetricFamily(name, help_text, value=value)
        state = GaugeMetricFamily(
            "vigil_target_memory_state", "1 for the current memory state.", labels=["state"]
        )
        for name in MEMORY_STATES:
            state.add_metric([name], 1.0 if name == view.state else 0.0)
        yield state


class _SLOCollector(Collector):
    def __init__(
        self,
        statuses: Callable[[], Sequence[SLOStatus]],
        objectives: Callable[[], dict[str, float]],
    ) -> None:
        self._statuses = statuses
        self._objectives = objectives

    def collect(self) -> Iterator[Metric]:
        objective = GaugeMetricFamily(
            "vigil_slo_objective_ratio", "The SLO's objective.", labels=["slo"]
        )
        for name, target in self._objectives().items():
            objective.add_metric([name], target)
        sli = GaugeMetricFamily(
            "vigil_slo_sli_ratio", "SLI per window (absent: no data).", labels=["slo", "window"]
        )
        burn = GaugeMetricFamily(
            "vigil_slo_burn_rate", "Burn rate per window.", labels=["slo", "window"]
        )
        budget = GaugeMetricFamily(
            "vigil_slo_error_budget_remaining_ratio",
            "Error budget left over the SLO's window (negative when overspent).",
            labels=["slo"],
        )
        alert = GaugeMetricFamily(
            "vigil_slo_alert_active", "1 while the alert fires.", labels=["slo", "severity"]
        )
        for status in self._statuses():
            for window, ratio in status.sli.items():
                if ratio is not None:
                    sli.add_metric([status.name, window], ratio)
            for window, rate in status.burn_rate.items():
                if rate is not None:
                    burn.add_metric([status.name, window], rate)
            if status.error_budget_remaining is not None:
                budget.add_metric([status.name], status.error_budget_remaining)
            for severity, active in status.alerts.items():
                alert.add_metric([status.name, severity], 1.0 if active else 0.0)
        yield from (objective, sli, burn, budget, alert)
