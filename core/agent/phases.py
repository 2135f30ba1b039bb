"""Timing and tracing of a run's phases: each phase is a span, a histogram sample with the
trace id as exemplar, and a timeout that names the phase when it fires."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from opentelemetry.trace import Span, Tracer
from opentelemetry.util.types import Attributes

from core.telemetry.metrics import Metrics, exemplar
from core.telemetry.spans import current_span


class PhaseTimeout(Exception):
    def __init__(self, phase: str, timeout_s: float) -> None:
        super().__init__(f"the {phase} phase took longer than {timeout_s:g} s")
        self.phase = phase
        self.timeout_s = timeout_s


@dataclass
class PhaseClock:
    """Remembers the phase a run is in, so a run-level timeout can name it."""

    tracer: Tracer
    metrics: Metrics
    current: str = "preflight"
    durations: dict[str, float] = field(default_factory=dict)

    @asynccontextmanager
    async def phase(
        self,
        name: str,
        timeout_s: float | None,
        span_name: str | None = None,
        attributes: Attributes = None,
    ) -> AsyncIterator[Span]:
        """The block as phase ``name``; ``attributes`` known at its start go on its span
        as it starts (where a sampler can see them, and cheaper than setting them after)."""
        self.current = name
        started = time.perf_counter()
        attributes = {"vigil.phase": name, **(attributes or {})}
        with current_span(self.tracer, span_name or name, attributes=attributes) as span:
            try:
                async with asyncio.timeout(timeout_s):
                    yield span
            except TimeoutError as exc:
                raise PhaseTimeout(name, timeout_s or 0.0) from exc
            finally:
                elapsed = time.perf_counter() - started
                self.durations[name] = self.durations.get(name, 0.0) + elapsed
                self.metrics.phase_duration.labels(name).observe(elapsed, exemplar(span))
