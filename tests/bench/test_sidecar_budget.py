"""The sidecar's own cost while it watches a loaded backend (issue budget: at most 2 % of one
core and 80 MB RSS). `make bench` runs it; `VIGIL_BENCH_SECONDS` sets the measured window.

The backend and the sidecar are real processes with the shipped intervals; the load is chat
users on the project's client running offline-agent runs back to back. The sidecar's CPU is
read from its own process's CPU times over the window, so the load's cost does not count."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from core.client import VigilClient
from tests.bench.report import Figure, record
from tests.fixtures.servers import BackendProcess, free_port, spawn_backend, stop_backend

pytestmark = pytest.mark.bench

USERS = 20
WARMUP_S = 20.0
MEASURE_S = float(os.environ.get("VIGIL_BENCH_SECONDS", "120"))
CPU_BUDGET_SHARE = 0.02
RSS_BUDGET_BYTES = 80 * 1024 * 1024


def spawn_sidecar(backend: BackendProcess, state_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [sys.executable, "-m", "sidecar", "run", "--port", str(port)]
    command += ["--target-url", backend.base_url, "--target-pid", str(backend.pid)]
    command += ["--state-dir", str(state_dir)]
    process = subprocess.Popen(command, env=os.environ.copy())
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the sidecar did not answer /healthz within 30 s")


async def chat_until(backend: BackendProcess, user: str, stop_at: float) -> int:
    runs = 0
    async with VigilClient.connect(backend.ws_url, backend.token(user)) as client:
        thread_id = None
        while time.monotonic() < stop_at:
            result = await client.run("What is 17 * 23?", thread_id, timeout=60)
            thread_id = result.accepted["thread_id"]
            runs += 1
    return runs


async def sample_sidecar(process: psutil.Process, stop_at: float) -> tuple[float, int]:
    """CPU seconds the sidecar used from now to ``stop_at``, and its peak RSS meanwhile."""
    start_cpu = sum(process.cpu_times()[:2])
    peak_rss = 0
    while time.monotonic() < stop_at:
        peak_rss = max(peak_rss, process.memory_info().rss)
        await asyncio.sleep(1.0)
    return sum(process.cpu_times()[:2]) - start_cpu, peak_rss


async def test_the_sidecar_stays_within_its_cpu_and_memory_budget(sqlite_url, tmp_path):
    backend = spawn_backend(sqlite_url, env={"VIGIL_LOG_LEVEL": "warning"})
    sidecar, url = spawn_sidecar(backend, tmp_path / "sidecar-state")
    try:
        process = psutil.Process(sidecar.pid)
        began = time.monotonic()
        measure_from = began + WARMUP_S
        stop_at = measure_from + MEASURE_S
        load = asyncio.gather(*(chat_until(backend, f"bench-{i}", stop_at) for i in range(USERS)))
        await asyncio.sleep(WARMUP_S)
        (cpu_s, peak_rss), runs = await asyncio.gather(sample_sidecar(process, stop_at), load)
        slo = httpx.get(f"{url}/slo", timeout=5).json()
    finally:
        sidecar.terminate()
        sidecar.wait(timeout=30)
        stop_backend(backend)
    elapsed = time.monotonic() - began
    cpu_share = cpu_s / MEASURE_S
    figures = {
        "measured_s": MEASURE_S,
        "users": USERS,
        "runs": sum(runs),
        "runs_per_s": round(sum(runs) / elapsed, 1),
        "sidecar_cpu_share_of_one_core": round(cpu_share, 4),
        "sidecar_peak_rss_mb": round(peak_rss / 2**20, 1),
        "canary_runs_seen": len(slo["canary"]["recent"]),
    }
    print(json.dumps(figures, indent=2))
    record_figures(figures, cpu_share, peak_rss)
    assert sum(runs) > 0 and figures["canary_runs_seen"] > 0
    assert cpu_share <= CPU_BUDGET_SHARE, figures
    assert peak_rss <= RSS_BUDGET_BYTES, figures


def record_figures(figures: dict[str, object], cpu_share: float, peak_rss: int) -> None:
    """Into docs/benchmarks.md, beside the other benches' figures."""
    record(
        "sidecar",
        "6. The sidecar's CPU and RSS while it watches a loaded backend",
        "make bench (tests/bench/test_sidecar_budget.py)",
        [
            Figure(
                "sidecar CPU, share of one core",
                f"{cpu_share:.2%}",
                f"<= {CPU_BUDGET_SHARE:.0%}",
                cpu_share <= CPU_BUDGET_SHARE,
            ),
            Figure(
                "sidecar peak RSS",
                f"{peak_rss / 2**20:.1f} MiB",
                f"<= {RSS_BUDGET_BYTES // 2**20} MiB",
                peak_rss <= RSS_BUDGET_BYTES,
            ),
            Figure(
                "load meanwhile",
                f"{figures['users']} users, {figures['runs']} runs, "
                f"{figures['runs_per_s']} runs/s; canary runs seen {figures['canary_runs_seen']}",
            ),
        ],
        notes=f"Backend and sidecar are real processes with the shipped intervals; "
        f"{WARMUP_S:g} s warm-up, then {MEASURE_S:g} s measured (VIGIL_BENCH_SECONDS). The "
        "sidecar's CPU is its own process's CPU time over the window.",
    )
