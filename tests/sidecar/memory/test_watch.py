"""The memory watch on real processes: one that grows is flagged, a flat one is not."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from sidecar.memory.target import TargetNotFound, TargetSpec, find_target
from sidecar.memory.trend import CRITICAL, OK, UNKNOWN, WARNING, Thresholds
from sidecar.memory.watch import MemoryWatcher
from sidecar.metrics import SidecarMetrics

GROWS = (
    "import time\nheap = []\nwhile True:\n    heap.append(b'x' * 1_000_000)\n    time.sleep(0.02)\n"
)
FLAT = "import time\nwhile True:\n    time.sleep(1)\n"
QUICK = Thresholds(min_points=10, min_span_s=0.5)


@pytest.fixture
def child() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        process.kill()
        process.wait()


def spawn(code: str, children: list[subprocess.Popen[bytes]]) -> int:
    process = subprocess.Popen([sys.executable, "-c", code])
    children.append(process)
    return process.pid


async def watch(pid: int, samples: int = 20) -> MemoryWatcher:
    watcher: MemoryWatcher | None = None
    metrics = SidecarMetrics(memory=lambda: watcher.view() if watcher else None)
    watcher = MemoryWatcher(
        TargetSpec(pid=pid), metrics, thresholds=QUICK, interval_s=0.05, uss_every=5
    )
    for _ in range(samples):
        await watcher.once()
        await asyncio.sleep(0.05)  # real time: the child grows in real time
    return watcher


async def test_a_process_that_grows_is_flagged_with_a_positive_slope(
    child: list[subprocess.Popen[bytes]],
) -> None:
    watcher = await watch(spawn(GROWS, child))
    assert watcher.latest.state in {WARNING, CRITICAL}  # ~50 MB/s: critical growth, no limit
    assert watcher.latest.slope_bps is not None and watcher.latest.slope_bps > 5_000_000
    registry = watcher.metrics.registry
    growth = registry.get_sample_value("vigil_target_memory_growth_bytes_per_second")
    assert growth is not None and growth > 0
    assert registry.get_sample_value("vigil_target_memory_state", {"state": "ok"}) == 0


async def test_a_flat_process_is_not_flagged(child: list[subprocess.Popen[bytes]]) -> None:
    watcher = await watch(spawn(FLAT, child))
    assert watcher.latest.state == OK
    assert watcher.latest.slope_bps is not None
    assert abs(watcher.latest.slope_bps) < QUICK.warning_growth_bps
    assert watcher.uss is not None and watcher.uss > 0


async def test_a_vanished_backend_is_unknown_not_a_crash(
    child: list[subprocess.Popen[bytes]],
) -> None:
    pid = spawn(FLAT, child)
    metrics = SidecarMetrics()
    watcher = MemoryWatcher(TargetSpec(pid=pid), metrics, thresholds=QUICK)
    assert (await watcher.once()).state == OK
    child[0].kill()
    child[0].wait()
    assert (await watcher.once()).state == UNKNOWN
    assert watcher.last_error is not None


def test_the_backend_is_found_by_pid_file_and_by_name(
    tmp_path: Path, child: list[subprocess.Popen[bytes]]
) -> None:
    pid = spawn(FLAT + "# vigil-test-marker\n", child)
    pid_file = tmp_path / "backend.pid"
    pid_file.write_text(f"{pid}\n")
    assert find_target(TargetSpec(pid_file=pid_file)).pid == pid
    assert find_target(TargetSpec(name="vigil-test-marker")).pid == pid
    with pytest.raises(TargetNotFound, match="no process named"):
        find_target(TargetSpec(name="no-such-process-anywhere-42"))


async def test_a_limit_given_by_the_operator_is_the_one_judged_against(
    child: list[subprocess.Popen[bytes]],
) -> None:
    pid = spawn(FLAT, child)
    metrics = SidecarMetrics()
    rss = psutil.Process(pid).memory_info().rss
    watcher = MemoryWatcher(TargetSpec(pid=pid), metrics, thresholds=QUICK, limit_bytes=rss)
    assessment = await watcher.once()
    assert assessment.limit == rss
    assert assessment.state == CRITICAL  # at (or past) the limit it was given
