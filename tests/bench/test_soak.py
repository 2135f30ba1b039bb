"""Soak (docs/benchmarks.md, "soak"): steady chat load for ``VIGIL_SOAK_SECONDS`` (default
150) against a `vigil serve` process with its sidecar watching. The backend's RSS trend is
judged with the sidecar's own robust slope (sidecar/memory/trend.py: Theil-Sen, the median
of pairwise slopes) and its own leak threshold; every emitted event must be acked, none
undelivered. Bounded by the environment variable, so `make bench` stays bounded."""

from __future__ import annotations

import asyncio
import os
import statistics
import time

import httpx
import pytest

from core.client import VigilClient
from sidecar.memory.trend import Thresholds, theil_sen
from tests.bench.common import BENCH_ENV, metric_sum, rss_bytes
from tests.bench.report import Figure, record
from tests.bench.test_sidecar_budget import spawn_sidecar
from tests.fixtures.servers import spawn_backend, stop_backend
from tests.integration.runs import assert_well_formed_run

pytestmark = pytest.mark.bench

SOAK_S = float(os.environ.get("VIGIL_SOAK_SECONDS", "150"))
# Long enough for the bounded buffers (span buffer, per-thread event logs of 1,000 events)
# to be mostly full: filling them is growth, not a leak.
WARMUP_S = 60.0
USERS = 20
SAMPLE_EVERY_S = 2.0


async def chat_until(ws_url: str, token: str, stop_at: float, bad: list[str]) -> int:
    runs = 0
    async with VigilClient.connect(ws_url, token) as client:
        thread_id = None
        while time.monotonic() < stop_at:
            result = await client.run("What is 17 * 23?", thread_id, timeout=60)
            try:
                assert_well_formed_run(result.events)
            except AssertionError as exc:
                bad.append(str(exc))
            thread_id = result.accepted["thread_id"]
            runs += 1
    return runs


async def sample_rss(pid: int, start_at: float, stop_at: float) -> list[tuple[float, float]]:
    points = []
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    while time.monotonic() < stop_at:
        points.append((time.monotonic(), float(rss_bytes(pid))))
        await asyncio.sleep(SAMPLE_EVERY_S)
    return points


async def test_steady_load_keeps_memory_flat_and_delivers_every_event(sqlite_url, tmp_path):
    vigil = spawn_backend(sqlite_url, env=BENCH_ENV)
    sidecar, sidecar_url = spawn_sidecar(vigil, tmp_path / "sidecar-state")
    bad: list[str] = []
    try:
        began = time.monotonic()
        stop_at = began + WARMUP_S + SOAK_S
        users = [
            chat_until(vigil.ws_url, vigil.token(f"soak-{i}"), stop_at, bad) for i in range(USERS)
        ]
        points, *runs = await asyncio.gather(
            sample_rss(vigil.pid, began + WARMUP_S, stop_at), *users
        )
        await asyncio.sleep(2)  # the last acks reach the backend
        emitted = metric_sum(vigil.base_url, "vigil_events_emitted_total")
        acked = metric_sum(vigil.base_url, "vigil_events_acked_total")
        undelivered = metric_sum(vigil.base_url, "vigil_events_undelivered_total")
        memory = httpx.get(f"{sidecar_url}/slo", timeout=5).json().get("memory", {})
    finally:
        sidecar.terminate()
        sidecar.wait(timeout=30)
        stop_backend(vigil)
    slope = theil_sen(points)
    assert slope is not None
    t0 = points[0][0]
    residuals = [rss - (points[0][1] + slope * (t - t0)) for t, rss in points]
    noise = statistics.pstdev(residuals)
    drift = slope * (points[-1][0] - t0)
    leak_threshold = Thresholds().warning_growth_bps
    late = theil_sen(points[len(points) // 2 :]) or 0.0
    total_runs = sum(runs)
    figures = [
        Figure("soak", f"{SOAK_S:g} s after {WARMUP_S:g} s warm-up, {USERS} users, "
               f"{total_runs:,} runs ({total_runs / (WARMUP_S + SOAK_S):.1f}/s)"),
        Figure("backend RSS first / last sample", f"{points[0][1] / 2**20:.1f} / "
               f"{points[-1][1] / 2**20:.1f} MiB ({len(points)} samples)"),
        Figure("RSS slope (Theil-Sen, the sidecar's)", f"{slope / 1024:+.2f} KiB/s",
               f"< {leak_threshold / 1024:g} KiB/s (sidecar warning)", slope < leak_threshold),
        Figure("RSS slope over the second half of the window", f"{late / 1024:+.2f} KiB/s"),
        Figure("drift over the window vs residual noise (1 sd)",
               f"{drift / 2**20:+.2f} MiB vs {noise / 2**20:.2f} MiB"),
        Figure("sidecar's own memory state", str(memory.get("state", memory))),
        Figure("events emitted / acked / undelivered", f"{emitted:,.0f} / {acked:,.0f} / "
               f"{undelivered:,.0f}", "0 undelivered", undelivered == 0 and acked == emitted),
        Figure("malformed runs seen by users", str(len(bad)), "0", not bad),
    ]  # fmt: skip
    record(
        "soak",
        "7. Soak: steady load with the sidecar watching",
        f"VIGIL_SOAK_SECONDS={SOAK_S:g} make bench (tests/bench/test_soak.py)",
        figures,
        notes="A `vigil serve` process (SQLite) and its sidecar (real processes, shipped "
        "intervals); users chat back to back on the project's client, each run checked for "
        f"the protocol's order; the backend's RSS sampled every {SAMPLE_EVERY_S:g} s after the "
        "warm-up.",
    )
    assert not bad, bad[:3]
    assert undelivered == 0 and acked == emitted
    assert slope < leak_threshold
