"""Leak detection arithmetic and the cgroup limit, without processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar.memory.cgroup import cgroup_paths, memory_limit, parse_limit
from sidecar.memory.trend import (
    CRITICAL,
    OK,
    UNKNOWN,
    WARNING,
    RssWindow,
    Thresholds,
    assess,
    theil_sen,
)

MIB = 2**20
FAST = Thresholds(min_points=5, min_span_s=10)


def line(slope: float, n: int = 30, start: float = 100 * MIB) -> list[tuple[float, float]]:
    return [(float(t), start + slope * t) for t in range(n)]


def test_the_slope_of_a_straight_line_is_its_slope() -> None:
    assert theil_sen(line(1000.0)) == pytest.approx(1000.0)


def test_a_single_spike_does_not_fool_the_slope() -> None:
    points = line(0.0)
    points[15] = (15.0, points[15][1] + 500 * MIB)  # one sample caught a huge transient
    assert theil_sen(points) == 0.0


def test_too_few_points_have_no_slope() -> None:
    assert theil_sen([(0.0, 1.0), (1.0, 2.0)]) is None


def test_a_flat_process_is_ok() -> None:
    result = assess(line(0.0), None, FAST)
    assert (result.state, result.slope_bps) == (OK, 0.0)


def test_steady_growth_without_a_limit_is_a_warning() -> None:
    result = assess(line(64 * 1024.0), None, FAST)
    assert result.state == WARNING
    assert result.seconds_to_limit is None


def test_growth_that_reaches_the_limit_soon_is_critical() -> None:
    # At 0.5 MiB/s from 114.5 MiB, the 400 MiB limit is under 10 minutes away.
    result = assess(line(0.5 * MIB), 400 * MIB, FAST)
    assert result.state == CRITICAL
    assert result.seconds_to_limit == pytest.approx((400 - 100 - 14.5) * MIB / (0.5 * MIB), 0.01)


def test_rss_near_the_limit_is_critical_even_when_flat() -> None:
    assert assess(line(0.0, start=95 * MIB), 100 * MIB, FAST).state == CRITICAL
    assert assess(line(0.0, start=85 * MIB), 100 * MIB, FAST).state == WARNING


def test_no_sample_is_unknown_and_a_short_history_has_no_trend() -> None:
    assert assess([], None, FAST).state == UNKNOWN
    result = assess(line(64 * 1024.0, n=3), None, FAST)
    assert (result.state, result.slope_bps) == (OK, None)


def test_the_window_forgets_samples_older_than_its_span() -> None:
    window = RssWindow(window_s=10)
    for t in range(30):
        window.add(float(t), 1.0)
    assert [t for t, _ in window.points] == [float(t) for t in range(19, 30)]


def test_memory_max_reads_max_as_no_limit() -> None:
    assert parse_limit("max\n") is None
    assert parse_limit("536870912\n") == 512 * MIB
    assert parse_limit("9223372036854771712") is None  # cgroup v1's "unlimited"


def test_the_cgroup_paths_come_from_proc_cgroup() -> None:
    assert cgroup_paths("0::/kubepods/pod1/c1\n") == ("/kubepods/pod1/c1", None)
    assert cgroup_paths("4:memory:/docker/abc\n0::/\n") == ("/", "/docker/abc")


def fake_host(tmp_path: Path, cgroup: str, limits: dict[str, str]) -> dict[str, object]:
    proc = tmp_path / "proc" / "42"
    proc.mkdir(parents=True)
    (proc / "cgroup").write_text(f"0::{cgroup}\n")
    mount = tmp_path / "cgroup"
    mount.mkdir()
    (mount / "cgroup.controllers").write_text("memory\n")
    for relative, value in limits.items():
        directory = mount / relative
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "memory.max").write_text(value + "\n")
    return {"proc": tmp_path / "proc", "v2_mounts": (mount,), "v1_mount": tmp_path / "none"}


def test_the_smallest_limit_up_the_cgroup_tree_binds(tmp_path: Path) -> None:
    host = fake_host(tmp_path, "/pod/app", {"pod": str(256 * MIB), "pod/app": "max"})
    assert memory_limit(42, **host) == 256 * MIB  # type: ignore[arg-type]


def test_no_limit_anywhere_is_none(tmp_path: Path) -> None:
    host = fake_host(tmp_path, "/pod/app", {"pod": "max", "pod/app": "max"})
    assert memory_limit(42, **host) is None  # type: ignore[arg-type]
    assert memory_limit(7, **host) is None  # type: ignore[arg-type]
