"""The chart renders with Helm's own engine, lints clean, and every object it renders is valid
Kubernetes (kubernetes-validate, strict) or a valid Prometheus Operator object."""

from __future__ import annotations

import copy

import jsonschema
import kubernetes_validate
import pytest

from tests.helm import chart
from tests.helm.crd_schemas import SCHEMAS

RENDERS = {"default": chart.default_objects, "production": chart.production_objects}


@pytest.mark.parametrize("values", [None, "production"], ids=["default", "production"])
def test_helm_lint_finds_no_errors_or_warnings(values):
    report = chart.lint(chart.production_values() if values else None)
    assert report["errors"] == []
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == [], problems


@pytest.mark.parametrize("render", RENDERS.values(), ids=RENDERS.keys())
def test_every_rendered_object_is_valid_for_kubernetes(render):
    checked = 0
    for obj in render():
        if obj["kind"] in SCHEMAS:
            jsonschema.validate(obj, SCHEMAS[obj["kind"]])
        else:
            kubernetes_validate.validate(obj, chart.KUBERNETES_VERSION, strict=True)
        checked += 1
    assert checked >= 10


def test_the_strict_validation_refuses_a_field_kubernetes_does_not_know():
    deployment = copy.deepcopy(chart.one(chart.default_objects(), "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, chart.KUBERNETES_VERSION, strict=True)


def test_the_servicemonitor_schema_refuses_a_misspelt_field():
    monitor = copy.deepcopy(chart.one(chart.default_objects(), "ServiceMonitor"))
    monitor["spec"]["endpoints"][0]["relabellings"] = []
    with pytest.raises(jsonschema.ValidationError, match="relabellings"):
        jsonschema.validate(monitor, SCHEMAS["ServiceMonitor"])


def test_the_default_install_renders_the_whole_set():
    kinds = sorted({obj["kind"] for obj in chart.default_objects()})
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "PrometheusRule",
        "Secret",
        "Service",
        "ServiceAccount",
        "ServiceMonitor",
    ]


def test_the_production_example_adds_ingress_and_autoscaler_and_keeps_secrets_outside():
    objects = chart.production_objects()
    kinds = {obj["kind"] for obj in objects}
    assert {"Ingress", "HorizontalPodAutoscaler"} <= kinds
    # Every secret comes from an existing Secret: the chart renders none of its own.
    assert "Secret" not in kinds
    hpa = chart.one(objects, "HorizontalPodAutoscaler")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 12)
    # The autoscaler owns the replica count.
    assert "replicas" not in chart.one(objects, "Deployment")["spec"]


def test_every_object_is_in_the_release_namespace_and_carries_the_release_labels():
    for obj in chart.default_objects():
        metadata = obj["metadata"]
        assert metadata["namespace"] == chart.NAMESPACE, metadata["name"]
        assert metadata["labels"]["app.kubernetes.io/instance"] == chart.RELEASE
        assert metadata["labels"]["app.kubernetes.io/managed-by"] == "Helm"
