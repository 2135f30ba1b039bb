"""Helpers the benches share: peer processes, the backend's own metrics, process figures."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.servers import BackendProcess, free_port, spawn_backend, stop_backend

SCALE = float(os.environ.get("VIGIL_BENCH_SCALE", "1"))
# Every bench backend: quiet logs, and limits that would otherwise refuse the bench's own
# traffic (one client sending many chats and acks, many users at once). Stated in the doc.
BENCH_ENV = {
    "VIGIL_LOG_LEVEL": "warning",
    "VIGIL_RATE_LIMIT_PER_S": "100000",
    "VIGIL_RATE_LIMIT_BURST": "100000",
}


def fresh_copy(template: Path, path: Path) -> str:
    """A copy of the migrated template database at ``path``; its URL."""
    shutil.copy(template, path)
    return f"sqlite+aiosqlite:///{path}"


def scaled(n: int, minimum: int = 1) -> int:
    return max(minimum, int(n * SCALE))


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the peer exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listened on port {port} within {timeout_s} s")


@contextlib.contextmanager
def peer(module: str, frames: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port()
    command = [sys.executable, "-m", module, "--port", str(port), "--frames", str(frames)]
    process = subprocess.Popen(command)
    try:
        wait_for_port(port, process)
        yield port, process
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextlib.contextmanager
def backend(database_url: str, **env: str) -> Iterator[BackendProcess]:
    process = spawn_backend(database_url, env={**BENCH_ENV, **env})
    try:
        yield process
    finally:
        stop_backend(process)


def metric_samples(base_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def metric_sum(base_url: str, name: str) -> float:
    return sum(v for (n, _), v in metric_samples(base_url).items() if n == name)


def histogram_buckets(base_url: str, name: str) -> dict[float, float]:
    """The histogram's cumulative bucket counts by upper bound, summed over its labels."""
    buckets: dict[float, float] = {}
    for (sample, labels), value in metric_samples(base_url).items():
        if sample == f"{name}_bucket":
            bound = float(dict(labels)["le"])
            buckets[bound] = buckets.get(bound, 0.0) + value
    return buckets


def bucket_quantile(buckets: dict[float, float], q: float) -> tuple[float | None, int]:
    """The upper bound of the bucket holding quantile ``q`` (Prometheus' bucket resolution,
    no interpolation), and the observation count."""
    if not buckets:
        return None, 0
    total = buckets[max(buckets)]
    if total == 0:
        return None, 0
    for bound in sorted(buckets):
        if buckets[bound] >= q * total:
            return bound, int(total)
    return None, int(total)


def bucket_delta(after: dict[float, float], before: dict[float, float]) -> dict[float, float]:
    """The observations between two scrapes of one histogram."""
    return {bound: count - before.get(bound, 0.0) for bound, count in after.items()}


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def rss_bytes(pid: int) -> int:
    return int(psutil.Process(pid).memory_info().rss)


LOADGEN = "vigil loadgen --url {url} --users {users} --runs {runs} --json"


def run_loadgen(
    ws_url: str, users: int, runs: int, timeout_s: float = 600, think_s: float = 0.0
) -> dict[str, Any]:
    """`vigil loadgen` in its own process (so the load's cost is not the backend's); its
    JSON summary."""
    command = [sys.executable, "-m", "core", "loadgen", "--url", ws_url, "--users", str(users)]
    command += ["--runs", str(runs), "--json", "--timeout", "120", "--think", str(think_s)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    if not done.stdout.strip():
        raise RuntimeError(f"loadgen printed nothing (exit {done.returncode}): {done.stderr}")
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary
