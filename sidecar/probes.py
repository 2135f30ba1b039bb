"""Heartbeat probes of the backend's /healthz and /readyz.

``probe`` never raises for a backend that is down, slow or wrong: every outcome is a
``ProbeResult`` (up or not, how long it took, and why), which ``ProbeLoop`` exports as
``vigil_probe_up{probe}`` and ``vigil_probe_duration_seconds{probe}``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

import httpx

from sidecar.metrics import SidecarMetrics

PROBES = {"healthz": "/healthz", "readyz": "/readyz"}


@dataclass(frozen=True)
class ProbeResult:
    probe: str
    up: bool
    duration_s: float
    status: int | None
    detail: str
    at: float
    body: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "probe": self.probe,
            "up": self.up,
            "duration_s": self.duration_s,
            "status": self.status,
            "detail": self.detail,
            "at": self.at,
            "body": self.body,
        }


async def probe(
    client: httpx.AsyncClient,
    base_url: str,
    name: str,
    timeout: float,
    *,
    clock: Callable[[], float] = time.time,
    timer: Callable[[], float] = time.perf_counter,
) -> ProbeResult:
    started = timer()
    status: int | None = None
    body: dict[str, Any] = {}
    try:
        response = await client.get(base_url + PROBES[name], timeout=timeout)
        status = response.status_code
        detail = "ok" if status == 200 else f"HTTP {status}"
        body = _json_body(response)
    except httpx.TimeoutException:
        detail = f"no answer within {timeout} s"
    except httpx.HTTPError as exc:
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return ProbeResult(name, status == 200, timer() - started, status, detail, clock(), body)


def _json_body(response: httpx.Response) -> dict[str, Any]:
    # Strict JSON (no NaN or Infinity, which json.loads accepts): /slo serves the body again,
    # and its encoder refuses them.
    try:
        body = json.loads(response.content, parse_constant=_refuse_constant)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


class ProbeLoop:
    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        metrics: SidecarMetrics,
        *,
        interval_s: float = 5.0,
        timeout_s: float = 2.0,
    ) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.metrics = metrics
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.latest: dict[str, ProbeResult] = {}

    async def once(self) -> list[ProbeResult]:
        results = await asyncio.gather(
            *(probe(self.client, self.base_url, name, self.timeout_s) for name in PROBES)
        )
        for result in results:
            self.latest[result.probe] = result
            self.metrics.probe_up.labels(result.probe).set(1.0 if result.up else 0.0)
            self.metrics.probe_duration.labels(result.probe).set(result.duration_s)
        return list(results)
