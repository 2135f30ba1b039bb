"""The pod's command lines, run for real: the chart's rendered init container, backend and
sidecar (commands, flags, environment and ConfigMap settings, with the pod's paths mapped
to a temporary folder and its ports to free local ones) start, the sidecar finds the backend
by --target-name, reads its USS through /proc and runs a successful canary with the key the
chart hands both containers; SIGTERM then drains the backend within the pod's grace."""

from __future__ import annotations

import base64
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helm import chart

pytestmark = pytest.mark.slow

POD_PATHS = ("/var/lib/vigil-sidecar", "/var/lib/vigil", "/etc/vigil/slo")
START_TIMEOUT_S = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Pod:
    """The rendered pod spec, turned into local processes."""

    def __init__(self, tmp_path: Path) -> None:
        self.backend_port, self.sidecar_port = _free_port(), _free_port()
        values = {
            "auth": {"jwtSecret": "pod-test-secret-0123456789abcdef0123"},
            "backend": {"port": self.backend_port},
            "sidecar": {
                "port": self.sidecar_port,
                "probeIntervalSeconds": 1,
                "canaryIntervalSeconds": 2,
                "memoryIntervalSeconds": 0.5,
            },
        }
        self.objects = chart.render(values)
        self.paths = {pod: tmp_path / pod.strip("/").replace("/", "-") for pod in POD_PATHS}
        for local in self.paths.values():
            local.mkdir()
        [slo] = [c for c in chart.find(self.objects, "ConfigMap") if "slos.yaml" in c["data"]]
        (self.paths["/etc/vigil/slo"] / "slos.yaml").write_text(slo["data"]["slos.yaml"])
        self.containers = chart.containers(self.objects)
        self.spec = chart.one(self.objects, "Deployment")["spec"]["template"]["spec"]

    def _local(self, text: str) -> str:
        for pod, local in self.paths.items():
            text = text.replace(pod, str(local))
        return text.replace("--host=0.0.0.0", "--host=127.0.0.1").replace("0.0.0.0", "127.0.0.1")

    def command(self, name: str) -> list[str]:
        container = self.containers[name]
        entrypoint = [str(Path(sys.executable).with_name("vigil"))]  # the image's ENTRYPOINT
        command = container.get("command", entrypoint)
        if command[0] == "python":
            command = [sys.executable, *command[1:]]
        return [self._local(part) for part in command + container["args"]]

    def environment(self, name: str) -> dict[str, str]:
        secrets = {
            (s["metadata"]["name"], key): base64.b64decode(value).decode()
            for s in chart.find(self.objects, "Secret")
            for key, value in s["data"].items()
        }
        config_maps = {
            c["metadata"]["name"]: c["data"] for c in chart.find(self.objects, "ConfigMap")
        }
        container = self.containers[name]
        environ = {"PATH": os.environ.get("PATH", ""), "HOME": str(self.paths["/var/lib/vigil"])}
        for source in container.get("envFrom", []):
            environ.update(config_maps[source["configMapRef"]["name"]])
        for variable in container.get("env", []):
            value = variable.get("value")
            reference: dict[str, Any] = variable.get("valueFrom", {})
            if "secretKeyRef" in reference:
                ref = reference["secretKeyRef"]
                value = secrets[(ref["name"], ref["key"])]
            elif "fieldRef" in reference:
                value = "vigil-7c9f-abcde"
            elif "resourceFieldRef" in reference:
                ref = reference["resourceFieldRef"]
                kind, _, resource = ref["resource"].partition(".")
                quantity = self.containers[ref["containerName"]]["resources"][kind][resource]
                value = str(_bytes(quantity))
            value = re.sub(r"\$\((\w+)\)", lambda m: environ.get(m.group(1), m.group(0)), value)
            environ[variable["name"]] = self._local(value)
        return environ

    def start(self, name: str, log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            return subprocess.Popen(
                self.command(name),
                env=self.environment(name),
                cwd=self.paths["/var/lib/vigil"],
                stdout=out,
                stderr=subprocess.STDOUT,
            )


def _wait_for(check, what: str, log: Path, timeout_s: float = START_TIMEOUT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.25)
    pytest.fail(
        f"{what} within {timeout_s:g} s; last lines of {log.name}:\n{log.read_text()[-2000:]}"
    )


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=2.0)
    except httpx.HTTPError:
        return None


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture
def pod(tmp_path: Path) -> Iterator[Pod]:
    vigil = Path(sys.executable).with_name("vigil")
    assert vigil.is_file(), f"{vigil} is missing: install the project (`make test` does)"
    yield Pod(tmp_path)


def test_the_rendered_pod_starts_watches_its_backend_and_drains_on_sigterm(
    pod: Pod, tmp_path: Path
):
    migrate = subprocess.run(
        pod.command("migrate"),
        env=pod.environment("migrate"),
        cwd=pod.paths["/var/lib/vigil"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stderr
    assert "database at revision" in migrate.stdout

    backend_log, sidecar_log = tmp_path / "backend.log", tmp_path / "sidecar.log"
    backend = pod.start("backend", backend_log)
    sidecar: subprocess.Popen[bytes] | None = None
    try:
        base = f"http://127.0.0.1:{pod.backend_port}"
        _wait_for(
            lambda: (r := _get(base + "/readyz")) and r.status_code == 200,
            "/readyz 200",
            backend_log,
        )
        sidecar = pod.start("sidecar", sidecar_log)
        metrics_url = f"http://127.0.0.1:{pod.sidecar_port}/metrics"

        def watched() -> str | None:
            response = _get(metrics_url)
            text = response.text if response is not None else ""
            uss = re.search(r'^vigil_target_memory_bytes\{kind="uss"\} (\S+)$', text, re.MULTILINE)
            canary = re.search(
                r'^vigil_canary_runs_total\{outcome="success",phase="none"\} (\S+)$',
                text,
                re.MULTILINE,
            )
            return (
                text
                if uss and float(uss.group(1)) > 0 and canary and float(canary.group(1)) >= 1
                else None
            )

        text = _wait_for(watched, "the sidecar's USS reading and a successful canary", sidecar_log)
        assert 'vigil_probe_up{probe="readyz"} 1.0' in text
        assert 'vigil_target_memory_state{state="unknown"} 0.0' in text

        grace = pod.spec["terminationGracePeriodSeconds"]
        sleep = int(pod.containers["backend"]["lifecycle"]["preStop"]["exec"]["command"][1])
        started = time.monotonic()
        backend.send_signal(signal.SIGTERM)
        assert backend.wait(timeout=grace - sleep) == 0
        assert time.monotonic() - started < grace - sleep
        assert "sigterm_received" in backend_log.read_text()
    finally:
        _stop(backend)
        if sidecar is not None:
            sidecar.send_signal(signal.SIGTERM)
            try:
                sidecar.wait(timeout=15)
            finally:
                _stop(sidecar)


_BINARY_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def _bytes(quantity: str) -> int:
    """A Kubernetes memory quantity as the downward API gives it (bytes, divisor 1)."""
    for suffix, factor in _BINARY_SUFFIXES.items():
        if quantity.endswith(suffix):
            return int(quantity[: -len(suffix)]) * factor
    return int(quantity)
