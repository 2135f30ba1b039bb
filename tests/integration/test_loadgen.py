"""`vigil loadgen` against a real backend process: every run completes and is counted."""

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.fixtures.servers import BackendProcess, spawn_backend, stop_backend


def loadgen(
    backend: BackendProcess, *options: str, env: dict[str, str] | None = None, timeout_s: int = 60
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "core", "loadgen", "--url", backend.ws_url, "--json"]
    return subprocess.run(
        command + list(options), capture_output=True, text=True, timeout=timeout_s, check=False,
        env=env,
    )  # fmt: skip


def test_loadgen_drives_concurrent_users_and_reports_json(live_backend: BackendProcess):
    done = loadgen(live_backend, "--users", "4", "--runs", "3", "--timeout", "20", timeout_s=90)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["users"] == 4
    assert (summary["runs_completed"], summary["runs_not_completed"]) == (12, 0)
    assert summary["errors"] == {}
    # The offline agent sends at least started, thinking and completed for each run.
    assert summary["events"] >= 12 * 3
    assert summary["run_latency_ms"]["count"] == 12
    assert summary["delivery_latency_ms"]["count"] == summary["events"]
    assert summary["run_latency_ms"]["p50"] <= summary["run_latency_ms"]["max"]


def test_loadgen_names_each_kind_of_error(live_backend: BackendProcess):
    """A backend that refuses every connection shows up as errors, not as silence."""
    env = {"VIGIL_JWT_SECRET": "a-different-secret-than-the-backend-uses-0123456789"}
    done = loadgen(live_backend, "--users", "2", "--runs", "1", env=_env(env))
    assert done.returncode == 1
    summary = json.loads(done.stdout)
    assert summary["errors"] == {"handshake_refused:invalid_signature": 2}


def _env(extra: dict[str, str]) -> dict[str, str]:
    import os

    return {**os.environ, **extra}


@pytest.fixture
def unthrottled_backend(sqlite_url: str) -> Iterator[BackendProcess]:
    """A backend whose per-connection frame rate limit is out of reach: users chatting back
    to back for a whole second send more chats than the default allows (20/s, 40 at once),
    and would be refused as rate_limited on a fast machine."""
    backend = spawn_backend(
        sqlite_url, env={"VIGIL_RATE_LIMIT_PER_S": "100000", "VIGIL_RATE_LIMIT_BURST": "100000"}
    )
    yield backend
    stop_backend(backend)


def test_loadgen_stops_starting_runs_at_the_duration(unthrottled_backend: BackendProcess):
    done = loadgen(unthrottled_backend, "--users", "2", "--runs", "100000", "--duration", "1")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert 0 < summary["runs_completed"] < 200_000
    assert summary["errors"] == {}


def test_loadgen_users_can_think_between_their_chats(live_backend: BackendProcess):
    done = loadgen(live_backend, "--users", "2", "--runs", "2", "--think", "0.05")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["runs_completed"], summary["errors"]) == (4, {})
