"""The shipped rule files: generated, valid, tested by promtool, each alert documented."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from alerts.config import load_config
from alerts.generate import outputs
from sidecar.slo.math import WHOLE, WINDOWS

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "alerts"
RULES = ALERTS / "vigil-rules.yaml"
RUNBOOK_SECTIONS = ("## Meaning", "## Impact", "## Diagnosis", "## Mitigation")


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (Debian: prometheus / prometheus-alertmanager)")
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def alert_rules() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_the_committed_files_are_what_the_generator_writes_today():
    stale = [
        str(path.relative_to(ROOT))
        for path, text in outputs().items()
        if not path.exists() or path.read_text() != text
    ]
    assert not stale, f"run `python -m alerts.generate`: {stale} differ"


def test_promtool_finds_the_rules_valid_and_lint_clean():
    result = run(tool("promtool"), "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_promtool_rule_test_passes():
    files = sorted(str(path) for path in (ALERTS / "tests").glob("*.yaml"))
    result = run(tool("promtool"), "test", "rules", *files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_case_where_it_fires_and_one_where_it_must_not():
    fires: set[tuple[str, str]] = set()
    quiet: set[tuple[str, str]] = set()
    for path in (ALERTS / "tests").glob("*.yaml"):
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                firing = {alert["exp_labels"]["severity"] for alert in case["exp_alerts"]}
                for severity in ("page", "ticket"):
                    key = (case["alertname"], severity)
                    (fires if severity in firing else quiet).add(key)
    wanted = {(rule["alert"], rule["labels"]["severity"]) for rule in alert_rules()}
    assert wanted - fires == set(), "alerts never shown firing"
    assert wanted - quiet == set(), "alerts never shown staying quiet"


def test_every_alert_has_a_severity_summary_description_runbook_and_dashboard():
    config = load_config()
    uids = {dashboard.uid for dashboard in config.dashboards.values()}
    for rule in alert_rules():
        name, annotations = rule["alert"], rule["annotations"]
        assert rule["labels"]["severity"] in ("page", "ticket"), name
        assert annotations["summary"] and annotations["description"], name
        assert annotations["runbook_url"].endswith(f"alerts/runbooks/{name}.md"), name
        uid = re.search(r"/d/([^/?]+)", annotations["dashboard"])
        assert uid and uid.group(1) in uids, name


def test_every_alert_has_a_runbook_with_the_four_sections_and_no_runbook_is_orphaned():
    names = {rule["alert"] for rule in alert_rules()}
    books = {path.stem: path.read_text() for path in (ALERTS / "runbooks").glob("*.md")}
    assert names - set(books) == set(), "alerts without a runbook"
    assert set(books) - names == set(), "runbooks without an alert"
    for name, text in books.items():
        positions = [text.find(section) for section in RUNBOOK_SECTIONS]
        assert -1 not in positions and positions == sorted(positions), name


def panel_titles() -> set[str]:
    """Titles of every panel of the committed dashboards (dashboards/*.json)."""
    files = sorted((ROOT / "dashboards").glob("*.json"))
    if not files:
        pytest.fail("dashboards/*.json not found: the runbooks name their panels")
    titles: set[str] = set()

    def walk(panels: list[dict]) -> None:
        for panel in panels:
            titles.add(panel.get("title", ""))
            walk(panel.get("panels", []))

    for path in files:
        walk(json.loads(path.read_text())["panels"])
    return titles


def test_every_runbook_diagnosis_names_a_dashboard_panel_a_metric_a_log_event_and_a_trace():
    titles = [dashboard.title for dashboard in load_config().dashboards.values()]
    panels = panel_titles()
    for path in sorted((ALERTS / "runbooks").glob("*.md")):
        text = path.read_text()
        diagnosis = " ".join(text[text.find("## Diagnosis") : text.find("## Mitigation")].split())
        assert any(title in diagnosis for title in titles), f"{path.name}: no dashboard"
        named = re.findall(r"\*\*([^*]+)\*\*", diagnosis)
        assert named, f"{path.name}: no panel named"
        assert set(named) <= panels, f"{path.name}: no such panel {set(named) - panels}"
        assert re.search(r"`(vigil|up|gen_ai)[a-z_:]*[{`(]", diagnosis), f"{path.name}: no metric"
        for bullet in ("- Metric:", "- Logs:", "- Trace:"):
            assert bullet in diagnosis, f"{path.name}: no {bullet!r} line"


def test_every_slo_has_an_error_ratio_and_burn_rate_for_every_window_and_a_budget():
    groups = yaml.safe_load(RULES.read_text())["groups"]
    recorded = {
        (rule["record"], rule["labels"]["slo"], rule["labels"].get("window"))
        for group in groups
        for rule in group["rules"]
        if "record" in rule
    }
    for slo in load_config().slos:
        for window in (*WINDOWS, WHOLE):
            assert ("vigil_slo:error_ratio", slo.name, window) in recorded
            assert ("vigil_slo:burn_rate", slo.name, window) in recorded
        assert ("vigil_slo:error_budget_remaining_ratio", slo.name, None) in recorded


def test_the_example_alertmanager_config_is_accepted_by_amtool():
    result = run(tool("amtool"), "check-config", str(ALERTS / "alertmanager.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
