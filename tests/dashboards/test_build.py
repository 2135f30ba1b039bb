"""The committed dashboards: generated, conventional, linked, and complete."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from alerts.config import ROOT, load_config
from alerts.generate import rules
from dashboards.build import dashboards, outputs
from dashboards.queries import load_dashboards, panel_queries, panels
from sidecar.criteria import judge

CONFIG = load_config()
COMMITTED = load_dashboards()
UIDS = {board.uid for board in CONFIG.dashboards.values()}


def walk(node: Any) -> Any:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def test_the_committed_files_are_what_the_generator_writes_today():
    stale = [
        str(path.relative_to(ROOT))
        for path, text in outputs(CONFIG).items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
    assert stale == [], f"run `python -m dashboards.build`: {stale} differ"


def test_the_check_mode_passes_on_the_committed_files():
    result = subprocess.run(
        [sys.executable, "-m", "dashboards.build", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_the_check_mode_names_a_file_that_differs(tmp_path, monkeypatch, capsys):
    from dashboards import build

    stale = tmp_path / "overview.json"
    stale.write_text("{}\n", encoding="utf-8")
    monkeypatch.setattr(build, "outputs", lambda: {stale: "{ }\n"})
    monkeypatch.setattr(build, "ROOT", tmp_path)
    assert build.main(["--check"]) == 1
    assert "overview.json" in capsys.readouterr().err
    assert stale.read_text(encoding="utf-8") == "{}\n"


def test_there_are_five_dashboards_with_the_configured_uids_and_titles():
    assert set(COMMITTED) == UIDS
    assert len(UIDS) == 5
    for key, board in CONFIG.dashboards.items():
        assert COMMITTED[board.uid]["title"] == board.title, key
    assert {
        "vigil-overview",
        "vigil-agent-execution",
        "vigil-slo",
        "vigil-success-metrics",
        "vigil-sidecar",
    } == UIDS


def test_the_uids_do_not_change_from_one_build_to_the_next():
    first, second = dashboards(CONFIG), dashboards(CONFIG)
    assert first == second
    assert {doc["uid"] for doc in first.values()} == UIDS


@pytest.mark.parametrize("uid", sorted(UIDS))
def test_every_panel_has_a_unit_a_description_and_the_datasource_variable(uid):
    document = COMMITTED[uid]
    found = list(panels(document))
    assert len(found) >= 8
    for panel in found:
        name = f"{uid} / {panel['title']}"
        assert panel.get("description", "").strip(), f"{name}: no description"
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{name}: no unit"
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, name
        assert panel["targets"], f"{name}: no query"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", name
            assert target["refId"], name


@pytest.mark.parametrize("uid", sorted(UIDS))
def test_no_datasource_uid_is_hard_coded(uid):
    for node in walk(COMMITTED[uid]):
        if isinstance(node, dict) and isinstance(node.get("datasource"), dict):
            assert node["datasource"].get("uid") == "${datasource}", node.get("title")


@pytest.mark.parametrize("uid", sorted(UIDS))
def test_the_variables_are_datasource_job_sidecar_job_namespace_and_pod(uid):
    variables = {v["name"]: v for v in COMMITTED[uid]["templating"]["list"]}
    names = ["datasource", "job", "sidecar_job", "namespace", "pod"]
    if uid == CONFIG.dashboards["slo"].uid:
        names.append("slo")
        assert variables["slo"]["query"] == ",".join(slo.name for slo in CONFIG.slos)
    assert list(variables) == names
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["job"]["current"]["value"] == "vigil"
    assert variables["sidecar_job"]["current"]["value"] == "vigil-sidecar"
    for name in ("namespace", "pod"):
        assert variables[name]["includeAll"] is True
        assert variables[name]["allValue"] == ".*"


@pytest.mark.parametrize("uid", sorted(UIDS))
def test_panel_ids_are_unique_and_panels_do_not_overlap(uid):
    found = [p for p in COMMITTED[uid]["panels"]]
    ids = [p["id"] for p in found]
    assert len(ids) == len(set(ids))
    cells = set()
    for panel in found:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{uid} / {panel['title']} overlaps"
                cells.add((x, y))


def test_every_dashboard_links_to_the_four_others_and_every_link_resolves():
    for uid, document in COMMITTED.items():
        targets = {link["url"].removeprefix("/d/") for link in document["links"]}
        assert targets == UIDS - {uid}, uid
        for link in document["links"]:
            assert link["keepTime"] and link["includeVars"], uid
    panel_links = [
        link["url"]
        for document in COMMITTED.values()
        for panel in panels(document)
        for link in panel.get("links", [])
    ]
    assert panel_links, "no panel links to other dashboards"
    for url in panel_links:
        match = re.fullmatch(r"/d/([\w-]+)\?.*", url)
        assert match and match.group(1) in UIDS, url


def test_rates_use_the_rate_interval():
    for query in panel_queries(COMMITTED):
        for window in re.findall(r"\brate\([^\[]*\[([^\]]*)\]", query.expr):
            assert window == "$__rate_interval", query.where


def test_every_success_criterion_of_the_report_is_a_stat_with_a_verdict():
    names = [criterion.name for criterion in judge([], {}, None, None)]
    board = COMMITTED[CONFIG.dashboards["success"].uid]
    stats = {panel["title"]: panel for panel in panels(board)}
    assert list(stats) == names
    for panel in stats.values():
        assert panel["type"] == "stat"
        verdict = panel["targets"][-1]
        assert verdict["legendFormat"] == "verdict"
        assert " bool " in verdict["expr"]
        overrides = {
            o["matcher"]["options"]: o["properties"] for o in panel["fieldConfig"]["overrides"]
        }
        mappings = next(p["value"] for p in overrides[verdict["refId"]] if p["id"] == "mappings")
        assert mappings[0]["options"]["1"]["text"] == "PASS"
        assert mappings[0]["options"]["0"]["text"] == "FAIL"


def test_the_slo_dashboard_has_a_row_for_every_slo_of_the_slo_file():
    board = COMMITTED[CONFIG.dashboards["slo"].uid]
    rows = [panel["title"].split(":")[0] for panel in board["panels"] if panel["type"] == "row"]
    assert rows == ["All SLOs", *(slo.name for slo in CONFIG.slos)]
    titles = {panel["title"] for panel in panels(board)}
    for slo in CONFIG.slos:
        for part in ("objective", "error budget left", "alert state", "burn rate by window"):
            assert f"{slo.name}: {part}" in titles


def test_latency_panels_of_the_agent_dashboard_ask_for_exemplars():
    board = COMMITTED[CONFIG.dashboards["agent"].uid]
    with_exemplars = {
        panel["title"]
        for panel in panels(board)
        if any(target.get("exemplar") for target in panel["targets"])
    }
    assert {
        "Run duration",
        "Phase duration p95 by phase",
        "Model call latency p95",
    } <= with_exemplars


def test_the_provisioning_files_name_the_folder_and_the_exemplar_trace_link():
    files = {path.name + path.parent.name: text for path, text in outputs(CONFIG).items()}
    provider = files["vigil.yamldashboards"]
    assert f"folderUid: {CONFIG.folder_uid}" in provider
    datasource = files["vigil.yamldatasources"]
    assert "exemplarTraceIdDestinations" in datasource
    assert json.loads(files["overview.jsondashboards"])["uid"] == "vigil-overview"


def test_every_alert_links_to_a_dashboard_and_variables_it_has():
    alerts = [
        rule for group in rules(CONFIG)["groups"] for rule in group["rules"] if "alert" in rule
    ]
    assert alerts
    for alert in alerts:
        link = urlsplit(alert["annotations"]["dashboard"])
        uid = link.path.removeprefix("/d/")
        assert uid in UIDS, alert["alert"]
        names = {v["name"] for v in COMMITTED[uid]["templating"]["list"]}
        for name in parse_qs(link.query):
            assert name.removeprefix("var-") in names, f"{alert['alert']}: {name}"
