"""Fixtures of the sidecar suite. One real backend process serves the whole suite (starting
one takes seconds); the tests that use it only add traffic and read relative figures."""

from __future__ import annotations

import asyncio
import io
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core.auth import issue_token
from core.settings import load_settings
from sidecar.app import create_app
from sidecar.memory.target import TargetSpec
from sidecar.memory.trend import Thresholds
from sidecar.runner import Sidecar, SidecarConfig
from tests.fixtures.servers import BackendProcess, spawn_backend, stop_backend
from tests.sidecar.fakes import closed_port, serve_in_thread


@pytest.fixture(scope="session")
def backend(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BackendProcess]:
    """The real backend (`vigil serve`) in its own process, shared by the sidecar suite."""
    path = tmp_path_factory.mktemp("sidecar-backend") / "vigil.db"
    shutil.copy(sqlite_template, path)
    process = spawn_backend(f"sqlite+aiosqlite:///{path}")
    yield process
    stop_backend(process)


def sidecar_config(target_url: str, state_dir: Path, **overrides: object) -> SidecarConfig:
    """A sidecar on fast intervals, so a test sees several cycles within a second or two."""
    settings: dict[str, object] = {
        "target_url": target_url,
        "state_dir": state_dir,
        "scrape_interval_s": 0.25,
        "probe_interval_s": 0.25,
        "canary_interval_s": 0.5,
        "memory_interval_s": 0.1,
        "http_timeout_s": 1.0,
        "canary_deadline_s": 5.0,
        "thresholds": Thresholds(min_points=5, min_span_s=0.3),
        **overrides,
    }
    return SidecarConfig(**settings)  # type: ignore[arg-type]


@dataclass
class RunningSidecar:
    url: str
    sidecar: Sidecar


@pytest.fixture(scope="session")
def watching_sidecar(
    backend: BackendProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningSidecar]:
    """A sidecar watching the shared backend (its pid, its metrics, the canary against it)."""
    config = sidecar_config(
        backend.base_url,
        tmp_path_factory.mktemp("sidecar-state"),
        memory_target=TargetSpec(pid=backend.pid),
    )
    # As the sidecar's own minted tokens: the operator role reads the traces (and drains).
    token = backend.token("vigil-canary", canary=True, roles=["operator"])
    app = create_app(config, tokens=lambda: token, log_stream=io.StringIO())
    with serve_in_thread(app) as url:
        yield RunningSidecar(url, app.state.sidecar)


@pytest.fixture(scope="session")
def orphan_sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSidecar]:
    """A sidecar whose backend is down (nothing listens on its port)."""
    config = sidecar_config(
        f"http://127.0.0.1:{closed_port()}", tmp_path_factory.mktemp("orphan-state")
    )
    token = issue_token(load_settings(), "vigil-canary", extra_claims={"canary": True})
    app = create_app(config, tokens=lambda: token, log_stream=io.StringIO())
    with serve_in_thread(app) as url:
        yield RunningSidecar(url, app.state.sidecar)


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something truthy (real processes, real time)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.05)


async def until(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    """``wait_for`` for async tests: yields to the event loop between polls."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.05)
