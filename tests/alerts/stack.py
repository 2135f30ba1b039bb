"""A live stack for the rule and dashboard proofs: `vigil serve`, `vigil sidecar` and Debian's
Prometheus, each a real process on a free port, and a small client of Prometheus's HTTP API.

Prometheus scrapes both every second and evaluates the shipped rules every second. The jobs
carry the names of ``alerts/config.yaml``'s selectors (``job="vigil"``, ``job="vigil-sidecar"``),
so the rules and the dashboards' queries run unchanged.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml

from alerts.config import load_config
from alerts.generate import RULES_FILE, dump, rules
from tests.fixtures.servers import BackendProcess, free_port, spawn_backend

INTERVAL_S = 1  # Prometheus' scrape and evaluation interval, the sidecar's loops
JWT_SECRET = "live-stack-secret-of-at-least-32-bytes!"
# Short delivery deadlines, so a client that never acks produces undelivered events in
# seconds: resent after 1 s, 2 s, 3 s, given up at 4 s (and a late ack at 2.5 s still counts).
BACKEND_ENV = {
    "VIGIL_JWT_SECRET": JWT_SECRET,
    "VIGIL_ACK_TIMEOUT_S": "1",
    "VIGIL_ACK_MAX_REDELIVERIES": "3",
    "VIGIL_ACK_TIMEOUT_BACKOFF": "1",
    "VIGIL_HEARTBEAT_INTERVAL_S": "1",
    "VIGIL_LOG_LEVEL": "warning",
}
T = TypeVar("T")


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (Debian: prometheus)")
    return path


def wait_for(what: str, probe: Callable[[], T | None], timeout_s: float = 30.0) -> T:
    """Poll ``probe`` until it returns something true (a non-empty result, a timestamp)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.2)


def rule_file_text() -> str:
    """The shipped rules, with the SLO-window groups evaluated every INTERVAL_S instead of
    every ``slo_window_interval`` (2m: longer than this test). Nothing else differs."""
    config = dataclasses.replace(load_config(), slo_window_interval=f"{INTERVAL_S}s")
    text = dump(rules(config))
    assert _without_intervals(text) == _without_intervals(RULES_FILE.read_text())
    return text


def _without_intervals(text: str) -> Any:
    document = yaml.safe_load(text)
    for group in document["groups"]:
        group.pop("interval", None)
    return document


def parse_time(text: str) -> float:
    """Prometheus' RFC 3339 timestamps (nanoseconds, 'Z') as Unix seconds."""
    head, _, fraction = text.rstrip("Z").partition(".")
    moment = datetime.fromisoformat(head).replace(tzinfo=UTC).timestamp()
    return moment + (float(f"0.{fraction}") if fraction else 0.0)


class PromAPI:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=10.0)

    def _get(self, path: str, **params: Any) -> Any:
        response = self.http.get(path, params=params)
        body = response.json()
        assert body.get("status") == "success", f"{path} {params}: {body}"
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = at
        return list(self._get("/api/v1/query", **params)["result"])

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Any]:
        data = self._get("/api/v1/query_range", query=expr, start=start, end=end, step=step)
        return list(data["result"])

    def label_values(self, label: str, match: str) -> list[str]:
        return list(self._get(f"/api/v1/label/{label}/values", **{"match[]": match}))

    def alerts(self) -> list[dict[str, Any]]:
        return list(self._get("/api/v1/alerts")["alerts"])

    def last_scrape(self, job: str) -> float | None:
        targets = self._get("/api/v1/targets", state="active")["activeTargets"]
        for target in targets:
            if target["labels"]["job"] == job and target["health"] == "up":
                return parse_time(target["lastScrape"])
        return None

    def oldest_group_evaluation(self) -> float:
        groups = self._get("/api/v1/rules")["groups"]
        return min(parse_time(group["lastEvaluation"]) for group in groups)


@dataclass
class Stack:
    backend: BackendProcess
    sidecar: subprocess.Popen[bytes]
    sidecar_url: str
    prometheus: subprocess.Popen[bytes]
    prom: PromAPI
    logs: Path

    def sidecar_slo(self) -> dict[str, Any]:
        response = httpx.get(f"{self.sidecar_url}/slo", timeout=5.0)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def backend_sample(self, name: str) -> float | None:
        """One unlabelled sample of the backend's /metrics, read directly."""
        text = httpx.get(f"{self.backend.base_url}/metrics", timeout=5.0).text
        for line in text.splitlines():
            if line.startswith(f"{name} "):
                return float(line.split()[1])
        return None


def start_stack(tmp: Path) -> Stack:
    env = {**os.environ, **BACKEND_ENV}
    backend = spawn_backend(f"sqlite+aiosqlite:///{tmp / 'vigil.db'}", BACKEND_ENV)
    sidecar_port, prom_port = free_port(), free_port()
    sidecar = _spawn(
        tmp / "sidecar.log",
        [sys.executable, "-m", "core", "sidecar", "--port", str(sidecar_port),
         "--target-url", backend.base_url, "--state-dir", str(tmp / "sidecar"),
         "--scrape-interval", str(INTERVAL_S), "--probe-interval", str(INTERVAL_S),
         "--canary-interval", "3", "--memory-interval", str(INTERVAL_S)],
        env,
    )  # fmt: skip
    (tmp / "rules.yaml").write_text(rule_file_text())
    backend_target = backend.base_url.removeprefix("http://")
    config = {
        "global": {
            "scrape_interval": f"{INTERVAL_S}s",
            "scrape_timeout": f"{INTERVAL_S}s",
            "evaluation_interval": f"{INTERVAL_S}s",
        },
        "rule_files": [str(tmp / "rules.yaml")],
        "scrape_configs": [
            {"job_name": "vigil", "static_configs": [{"targets": [backend_target]}]},
            {
                "job_name": "vigil-sidecar",
                "static_configs": [{"targets": [f"127.0.0.1:{sidecar_port}"]}],
            },
        ],
    }
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    prometheus = _spawn(
        tmp / "prometheus.log",
        [tool("prometheus"), f"--config.file={tmp / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom_port}"],
        dict(os.environ),
    )  # fmt: skip
    stack = Stack(
        backend,
        sidecar,
        f"http://127.0.0.1:{sidecar_port}",
        prometheus,
        PromAPI(f"http://127.0.0.1:{prom_port}"),
        tmp,
    )
    try:
        wait_for("Prometheus to answer", lambda: _answers(f"{stack.prom.base_url}/-/ready"))
        wait_for("the sidecar to answer", lambda: _answers(f"{stack.sidecar_url}/healthz"))
        wait_for("a scrape of the backend", lambda: stack.prom.last_scrape("vigil"))
        wait_for("a scrape of the sidecar", lambda: stack.prom.last_scrape("vigil-sidecar"))
        wait_for("the sidecar's first scrape", lambda: stack.sidecar_slo()["scrape"]["ok"])
    except BaseException:  # noqa: BLE001 - stops what started, then re-raises
        stop_stack(stack)
        raise
    return stack


def _spawn(log: Path, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A process whose output goes to ``log`` (kept in the test's directory)."""
    with log.open("wb") as output:
        return subprocess.Popen(args, env=env, stdout=output, stderr=subprocess.STDOUT)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.TransportError:
        return False


def stop_stack(stack: Stack) -> None:
    for process in (stack.prometheus, stack.sidecar, stack.backend.process):
        if process.poll() is None:
            process.terminate()
    for process in (stack.prometheus, stack.sidecar, stack.backend.process):
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    stack.prom.http.close()
