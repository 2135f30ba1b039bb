"""The pod: the backend and the sidecar from one image, locked down, probed, and given the
time to drain its WebSockets."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import PurePosixPath

import pytest
import yaml

from tests.helm import chart

DOCKERFILE = chart.ROOT / "Dockerfile"
RENDERS = {"default": chart.default_objects, "production": chart.production_objects}


def _pod_spec(objects):
    return chart.one(objects, "Deployment")["spec"]["template"]["spec"]


def _settings(objects) -> dict[str, str]:
    """The plain settings of the chart's ConfigMap (envFrom of the backend)."""
    [config_map] = [
        c for c in chart.find(objects, "ConfigMap") if "VIGIL_SHUTDOWN_GRACE_S" in c.get("data", {})
    ]
    return config_map["data"]


def _mounted(container, path: str) -> bool:
    target = PurePosixPath(path)
    return any(
        target == PurePosixPath(m["mountPath"]) or PurePosixPath(m["mountPath"]) in target.parents
        for m in container.get("volumeMounts", [])
    )


def _flag(container, name: str) -> str:
    [value] = [a.split("=", 1)[1] for a in container["args"] if a.startswith(f"--{name}=")]
    return value


@pytest.mark.parametrize("render", RENDERS.values(), ids=RENDERS.keys())
def test_every_container_runs_non_root_read_only_with_no_capability(render):
    spec = _pod_spec(render())
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] > 0
    for name, container in chart.containers(render()).items():
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["allowPrivilegeEscalation"] is False, name
        assert context["capabilities"] == {"drop": ["ALL"]}, name


def test_the_sidecar_sees_the_backend_s_processes_as_the_same_user_without_sys_ptrace():
    # /proc/<pid>/smaps (USS) needs ptrace read access: granted to a process of the same uid,
    # which is why no container sets its own user and none adds SYS_PTRACE.
    spec = _pod_spec(chart.default_objects())
    assert spec["shareProcessNamespace"] is True
    for container in chart.containers(chart.default_objects()).values():
        assert "runAsUser" not in container["securityContext"]
        assert "add" not in container["securityContext"]["capabilities"]


@pytest.mark.parametrize("render", RENDERS.values(), ids=RENDERS.keys())
def test_every_place_a_process_writes_is_a_mounted_volume(render):
    objects = render()
    found = chart.containers(objects)
    volumes = {v["name"]: v for v in _pod_spec(objects)["volumes"]}
    for container in found.values():
        assert _mounted(container, "/tmp"), container["name"]
        for mount in container.get("volumeMounts", []):
            assert mount["name"] in volumes
    state_dir = _flag(found["sidecar"], "state-dir")
    assert _mounted(found["sidecar"], state_dir)
    database = chart.env(found["backend"])["VIGIL_DATABASE_URL"]
    if isinstance(database, str):  # SQLite: its file's folder must be writable
        path = database.removeprefix("sqlite+aiosqlite:///")
        assert _mounted(found["backend"], str(PurePosixPath(path).parent))
        assert _mounted(found["migrate"], str(PurePosixPath(path).parent))


def test_the_default_database_is_sqlite_on_the_pod_s_volume_and_production_reads_secrets():
    default = chart.env(chart.containers(chart.default_objects())["backend"])
    assert default["VIGIL_DATABASE_URL"] == "sqlite+aiosqlite:////var/lib/vigil/vigil.db"
    assert "VIGIL_REDIS_URL" not in default
    production = chart.env(chart.containers(chart.production_objects())["backend"])
    assert production["VIGIL_DATABASE_URL"] == {
        "secretKeyRef": {"name": "vigil-database", "key": "url"}
    }
    assert production["VIGIL_REDIS_URL"] == {"secretKeyRef": {"name": "vigil-redis", "key": "url"}}
    assert production["VIGIL_JWT_SECRET"] == {
        "secretKeyRef": {"name": "vigil-auth", "key": "jwt-secret"}
    }
    assert production["VIGIL_OPENAI_API_KEY"] == {
        "secretKeyRef": {"name": "vigil-openai", "key": "api-key"}
    }


@pytest.mark.parametrize("render", RENDERS.values(), ids=RENDERS.keys())
def test_termination_grace_covers_the_prestop_sleep_and_the_websocket_drain(render):
    objects = render()
    backend = chart.containers(objects)["backend"]
    sleep = backend["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep[0] == "sleep"
    drain = float(_settings(objects)["VIGIL_SHUTDOWN_GRACE_S"])
    grace = _pod_spec(objects)["terminationGracePeriodSeconds"]
    assert grace >= int(sleep[1]) + drain + 5


def test_the_drain_grace_follows_the_value_and_the_termination_grace_follows_it():
    objects = chart.render({"backend": {"shutdownGraceSeconds": 120, "preStopSleepSeconds": 10}})
    assert _settings(objects)["VIGIL_SHUTDOWN_GRACE_S"] == "120"
    assert _pod_spec(objects)["terminationGracePeriodSeconds"] == 140


def test_the_backend_is_probed_on_healthz_and_readyz_and_the_sidecar_never_gates_readiness():
    found = chart.containers(chart.default_objects())
    backend, sidecar = found["backend"], found["sidecar"]
    assert backend["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert backend["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert backend["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert sidecar["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "sidecar"}
    assert "readinessProbe" not in sidecar


def test_both_containers_have_requests_and_a_memory_limit():
    for name, container in chart.containers(chart.default_objects()).items():
        resources = container["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]), name
        assert "memory" in resources["limits"], name


def test_the_sidecar_watches_the_backend_on_localhost_with_the_mounted_slo_file():
    objects = chart.default_objects()
    found = chart.containers(objects)
    sidecar = found["sidecar"]
    assert sidecar["command"] == ["python", "-m", "sidecar"]
    assert sidecar["args"][0] == "run"
    backend_port = found["backend"]["ports"][0]["containerPort"]
    assert _flag(sidecar, "target-url") == f"http://127.0.0.1:{backend_port}"
    slo_file = PurePosixPath(_flag(sidecar, "slo-file"))
    [mount] = [
        m for m in sidecar["volumeMounts"] if PurePosixPath(m["mountPath"]) == slo_file.parent
    ]
    [volume] = [v for v in _pod_spec(objects)["volumes"] if v["name"] == mount["name"]]
    config_map = [
        c
        for c in chart.find(objects, "ConfigMap")
        if c["metadata"]["name"] == volume["configMap"]["name"]
    ]
    assert slo_file.name in config_map[0]["data"]


def test_the_sidecar_finds_the_backend_by_the_command_line_the_image_gives_it():
    found = chart.containers(chart.default_objects())
    entrypoint = _dockerfile_json("ENTRYPOINT")
    command_line = " ".join(found["backend"].get("command", entrypoint) + found["backend"]["args"])
    assert _flag(found["sidecar"], "target-name") in command_line
    assert _flag(found["sidecar"], "target-name") not in " ".join(found["migrate"]["args"])


def test_the_sidecar_signs_canary_tokens_with_the_backend_s_key():
    found = chart.containers(chart.default_objects())
    backend, sidecar = chart.env(found["backend"]), chart.env(found["sidecar"])
    for name in ("VIGIL_MODE", "VIGIL_JWT_SECRET", "VIGIL_JWT_ALGORITHMS"):
        assert sidecar[name] == backend[name], name
    # The sidecar reads only the token settings: no database, Redis or provider secrets.
    assert not {"VIGIL_DATABASE_URL", "VIGIL_REDIS_URL", "VIGIL_OPENAI_API_KEY"} & set(sidecar)


def test_each_replica_holds_its_run_leases_under_its_pod_name():
    backend = chart.env(chart.containers(chart.production_objects())["backend"])
    assert backend["VIGIL_REPLICA_ID"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def _dockerfile_json(instruction: str) -> list[str]:
    [line] = [
        line for line in DOCKERFILE.read_text().splitlines() if line.startswith(instruction + " ")
    ]
    value: list[str] = json.loads(line.removeprefix(instruction + " "))
    return value


def test_the_image_is_python_3_11_slim_and_runs_as_the_chart_s_user():
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM (\S+)", text, flags=re.MULTILINE)
    assert stages and all(image == "python:3.11-slim" for image in stages)
    [user] = re.findall(r"^USER (\d+):(\d+)$", text, flags=re.MULTILINE)
    values = yaml.safe_load((chart.CHART / "values.yaml").read_text())
    context = values["podSecurityContext"]
    assert (int(user[0]), int(user[1])) == (context["runAsUser"], context["runAsGroup"])


def test_the_image_copies_what_the_distribution_is_built_from_and_enters_through_vigil():
    text = DOCKERFILE.read_text()
    pyproject = tomllib.loads((chart.ROOT / "pyproject.toml").read_text())
    for source in re.findall(r"^COPY (?!--)(.+) \S+$", text, flags=re.MULTILINE):
        for name in source.split():
            assert (chart.ROOT / name).exists(), name
    packages = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    for package in packages:
        assert f"COPY {package.rstrip('*')} " in text, package
    assert _dockerfile_json("ENTRYPOINT") == ["vigil"]
    assert "vigil" in pyproject["project"]["scripts"]


def test_the_chart_s_app_version_is_the_distribution_s_version():
    pyproject = tomllib.loads((chart.ROOT / "pyproject.toml").read_text())
    metadata = yaml.safe_load((chart.CHART / "Chart.yaml").read_text())
    assert metadata["appVersion"] == pyproject["project"]["version"]
    image = chart.containers(chart.default_objects())["backend"]["image"]
    assert image.endswith(":" + pyproject["project"]["version"])


def test_the_sidecar_judges_memory_against_the_backend_s_limit_not_its_own():
    # The backend's cgroup is hidden from the sidecar's container: the pod tells it the limit.
    [limit] = [
        e
        for e in chart.containers(chart.default_objects())["sidecar"]["env"]
        if e["name"] == "VIGIL_TARGET_MEMORY_LIMIT"
    ]
    assert limit["valueFrom"]["resourceFieldRef"] == {
        "containerName": "backend",
        "resource": "limits.memory",
    }
    unlimited = chart.render({"backend": {"resources": {"limits": None}}})
    names = [e["name"] for e in chart.containers(unlimited)["sidecar"]["env"]]
    assert "VIGIL_TARGET_MEMORY_LIMIT" not in names
