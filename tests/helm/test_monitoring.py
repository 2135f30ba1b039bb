"""What Prometheus and Grafana get from the chart: the scrape jobs the rules select on, exactly
the rules of alerts/vigil-rules.yaml (valid for promtool), exactly the dashboards of
dashboards/*.json and exactly the sidecar's SLO file."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helm import chart

RULES = chart.ROOT / "alerts" / "vigil-rules.yaml"
ALERTS_CONFIG = chart.ROOT / "alerts" / "config.yaml"
SLO_FILE = chart.ROOT / "sidecar" / "slo" / "default_slos.yaml"
DASHBOARDS = chart.ROOT / "dashboards"
PROMTOOL = "promtool"


def _job(selector: str) -> str:
    match = re.fullmatch(r'job="([^"]+)"', selector)
    assert match, f'alerts/config.yaml selector {selector!r} is not job="..."'
    return match.group(1)


def _endpoint_jobs(objects) -> dict[str, str]:
    monitor = chart.one(objects, "ServiceMonitor")
    jobs = {}
    for endpoint in monitor["spec"]["endpoints"]:
        [relabel] = [r for r in endpoint["relabelings"] if r.get("targetLabel") == "job"]
        jobs[endpoint["port"]] = relabel["replacement"]
    return jobs


@pytest.mark.parametrize(
    "render", [chart.default_objects, chart.production_objects], ids=["default", "production"]
)
def test_the_scrape_jobs_are_the_ones_the_rules_and_dashboards_select(render):
    selectors = yaml.safe_load(ALERTS_CONFIG.read_text())["selectors"]
    assert _endpoint_jobs(render()) == {
        "http": _job(selectors["backend"]),
        "sidecar": _job(selectors["sidecar"]),
    }


def test_the_servicemonitor_scrapes_ports_the_service_and_containers_expose():
    objects = chart.default_objects()
    service_ports = {p["name"] for p in chart.one(objects, "Service")["spec"]["ports"]}
    container_ports = {
        p["name"] for c in chart.containers(objects).values() for p in c.get("ports", [])
    }
    monitor = chart.one(objects, "ServiceMonitor")
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["port"] in service_ports
        assert endpoint["port"] in container_ports
        assert endpoint["path"] == "/metrics"
    service_selector = chart.one(objects, "Service")["spec"]["selector"]
    assert monitor["spec"]["selector"]["matchLabels"] == service_selector


def test_the_prometheusrule_holds_exactly_the_rules_of_the_alerts_rule_file():
    rule = chart.one(chart.default_objects(), "PrometheusRule")
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]


def test_the_prometheusrule_groups_pass_promtool_check_rules(tmp_path: Path):
    promtool = shutil.which(PROMTOOL)
    assert promtool, "promtool is not installed (Debian package prometheus; .ci/run installs it)"
    rule = chart.one(chart.default_objects(), "PrometheusRule")
    rule_file = tmp_path / "rendered-rules.yaml"
    rule_file.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}, sort_keys=False))
    result = subprocess.run(
        [promtool, "check", "rules", str(rule_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    count = sum(len(group["rules"]) for group in rule["spec"]["groups"])
    assert f"SUCCESS: {count} rules found" in result.stdout


def test_the_release_label_reaches_servicemonitor_and_prometheusrule():
    objects = chart.production_objects()
    for kind in ("ServiceMonitor", "PrometheusRule"):
        labels = chart.one(objects, kind)["metadata"]["labels"]
        assert labels["release"] == "kube-prometheus-stack", kind


def test_the_dashboard_configmaps_hold_exactly_the_dashboards_json_files():
    sources = {path.name: path.read_text() for path in DASHBOARDS.glob("*.json")}
    assert sources, "no dashboards/*.json to compare with"
    rendered: dict[str, str] = {}
    for config_map in chart.find(chart.default_objects(), "ConfigMap"):
        if config_map["metadata"]["labels"].get("grafana_dashboard") == "1":
            assert len(config_map["data"]) == 1
            rendered.update(config_map["data"])
    assert sorted(rendered) == sorted(sources)
    for name, text in sources.items():
        assert rendered[name] == text, f"{name}: run `python helm/sync.py`"


def test_the_dashboards_go_to_grafana_s_folder_and_namespace_when_asked():
    objects = chart.render({"grafanaDashboards": {"namespace": "grafana", "folder": "Chat"}})
    dashboards = [
        c
        for c in chart.find(objects, "ConfigMap")
        if "grafana_dashboard" in c["metadata"]["labels"]
    ]
    assert dashboards
    for config_map in dashboards:
        assert config_map["metadata"]["namespace"] == "grafana"
        assert config_map["metadata"]["annotations"]["grafana_folder"] == "Chat"


def test_the_slo_configmap_holds_exactly_the_sidecar_s_slo_file():
    [config_map] = [
        c for c in chart.find(chart.default_objects(), "ConfigMap") if "slos.yaml" in c["data"]
    ]
    assert config_map["data"]["slos.yaml"] == SLO_FILE.read_text()


def test_monitoring_objects_can_be_left_out_for_a_cluster_without_the_operator():
    objects = chart.render(
        {
            "serviceMonitor": {"enabled": False},
            "prometheusRule": {"enabled": False},
            "grafanaDashboards": {"enabled": False},
        }
    )
    kinds = {obj["kind"] for obj in objects}
    assert not kinds & {"ServiceMonitor", "PrometheusRule"}
    assert not [
        c
        for c in chart.find(objects, "ConfigMap")
        if "grafana_dashboard" in c["metadata"]["labels"]
    ]
