"""Every query of every panel reads metrics that exist, and parses as PromQL."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric

from alerts.config import load_config
from alerts.generate import rules
from core.telemetry.metrics import Metrics
from dashboards.queries import defaults, expand, load_dashboards, metric_names, panel_queries
from sidecar.metrics import MemoryView, SidecarMetrics

CONFIG = load_config()
QUERIES = panel_queries(load_dashboards())
# Series Prometheus makes itself: the scrape health and the state of alerting rules.
PROMETHEUS = frozenset({"up", "ALERTS"})
SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("_count", "_sum", ""),
}


def exposed_names(registry: CollectorRegistry) -> set[str]:
    """Every series name a registry's /metrics can carry, even before any sample."""
    names: set[str] = set()
    family: Metric
    for family in registry.collect():
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names


def known_names() -> set[str]:
    backend = Metrics()
    full_memory = MemoryView(
        "ok", rss=1.0, uss=1.0, limit=2.0, growth_bps=1.0, seconds_to_limit=1.0
    )
    sidecar = SidecarMetrics(memory=lambda: full_memory)
    recorded = {
        rule["record"]
        for group in rules(CONFIG)["groups"]
        for rule in group["rules"]
        if "record" in rule
    }
    return exposed_names(backend.registry) | exposed_names(sidecar.registry) | recorded | PROMETHEUS


def test_metric_names_are_read_from_selectors_not_from_functions_labels_or_strings():
    expr = (
        'histogram_quantile(0.95, sum by (le, phase) (rate(a_bucket{job=~"$job", x="b_c"}[5m])))'
        ' / on() group_left (z) vector(1e-9) or label_replace(c:d{k="v"}, "kind", "e", "", "")'
        " > bool 0.99 or on (i) (f * 0 + Inf) or NaN"
    )
    assert metric_names(expr) == {"a_bucket", "c:d", "f"}


def test_the_name_check_knows_the_contract_and_the_recording_rules():
    known = known_names()
    assert {
        "vigil_ws_connections_total",
        "vigil_event_ack_latency_seconds_bucket",
        "gen_ai_client_token_usage_sum",
        "vigil_target_memory_seconds_to_limit",
        "vigil_slo:burn_rate",
        "vigil_slo_alert_active",
    } <= known
    assert "vigil_ws_connections" not in known  # counters are only seen with _total


def test_every_metric_a_panel_reads_exists_in_a_registry_or_the_recording_rules():
    known = known_names()
    used: set[str] = set()
    unknown = []
    for query in QUERIES:
        names = metric_names(query.expr)
        assert names, f"{query.where}: reads no metric"
        used |= names
        unknown += [f"{query.where}: {name}" for name in sorted(names - known)]
    assert unknown == []
    assert len(used) >= 40


def test_every_query_expands_with_the_variable_defaults():
    values = defaults(CONFIG)
    for query in QUERIES:
        text = expand(query.expr, values)
        assert "$" not in text, query.where
    assert values["job"] == "vigil" and values["sidecar_job"] == "vigil-sidecar"


def test_an_unknown_variable_is_an_error_not_an_empty_string():
    with pytest.raises(KeyError, match="nope"):
        expand('up{job=~"$nope"}', defaults(CONFIG))


def test_every_query_parses_as_promql(tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed (Debian: prometheus)")
    values = defaults(CONFIG)
    rule_file = tmp_path / "panels.yaml"
    rule_file.write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "panels",
                        "rules": [
                            {"record": f"panel:query_{index}", "expr": expand(q.expr, values)}
                            for index, q in enumerate(QUERIES)
                        ],
                    }
                ]
            }
        )
    )
    result = subprocess.run(
        [promtool, "check", "rules", str(rule_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(QUERIES)} rules found" in result.stdout
