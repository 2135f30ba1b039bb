"""Render and lint helm/vigil with the real Helm engine (Helm's Go SDK, bundled by the
``helm-python-sdk`` wheel: no helm binary), and the paths the chart tests compare against."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import helm_python
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "vigil"
PRODUCTION_VALUES = CHART / "ci" / "production-values.yaml"
RELEASE = "vigil"
NAMESPACE = "chat"
# The Kubernetes version whose schemas every rendered object must satisfy (kubernetes-validate
# ships schemas per minor version; 1.33 is the oldest minor still in upstream support).
KUBERNETES_VERSION = "1.33.0"

Manifest = dict[str, Any]


def render_templates(values: dict[str, Any] | None = None) -> dict[str, str]:
    """Template path -> rendered text, as `helm template` would print them."""
    with helm_python.Chart.load(CHART) as chart:
        return chart.render(values=values, name=RELEASE, namespace=NAMESPACE, is_install=True)


def render(values: dict[str, Any] | None = None) -> list[Manifest]:
    """Every Kubernetes object the chart renders for ``values`` (NOTES.txt left out)."""
    objects: list[Manifest] = []
    for path, text in sorted(render_templates(values).items()):
        if path.endswith(".txt"):
            continue
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


def production_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(PRODUCTION_VALUES.read_text())
    return values


@functools.cache
def default_objects() -> tuple[Manifest, ...]:
    return tuple(render())


@functools.cache
def production_objects() -> tuple[Manifest, ...]:
    return tuple(render(production_values()))


def lint(values: dict[str, Any] | None = None) -> dict[str, Any]:
    return helm_python.lint(CHART, values, strict=True, kube_version=f"v{KUBERNETES_VERSION}")


def find(objects: tuple[Manifest, ...] | list[Manifest], kind: str) -> list[Manifest]:
    return [obj for obj in objects if obj["kind"] == kind]


def one(objects: tuple[Manifest, ...] | list[Manifest], kind: str) -> Manifest:
    found = find(objects, kind)
    assert len(found) == 1, f"expected one {kind}, rendered {len(found)}"
    return found[0]


def containers(objects: tuple[Manifest, ...] | list[Manifest]) -> dict[str, Manifest]:
    """The Deployment's containers and init containers by name."""
    spec = one(objects, "Deployment")["spec"]["template"]["spec"]
    every = spec.get("initContainers", []) + spec["containers"]
    return {c["name"]: c for c in every}


def env(container: Manifest) -> dict[str, Any]:
    """Name -> value (a string) or valueFrom (a dict)."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def engine_version() -> str:
    return f"Helm SDK {helm_python.helm_sdk_version()} (helm-python-sdk {helm_python.__version__})"
