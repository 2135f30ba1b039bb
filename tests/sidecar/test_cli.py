"""`vigil slo report`, `vigil canary --once` and the sidecar command's start-up checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from typer.testing import CliRunner

from sidecar.cli import app
from sidecar.report import render_markdown, render_table
from tests.fixtures.servers import BackendProcess
from tests.sidecar.conftest import RunningSidecar, wait_for
from tests.sidecar.fakes import closed_port
from tests.sidecar.test_sidecar import slo_doc

runner = CliRunner()

DOCUMENT: dict[str, Any] = {
    "target_url": "http://backend:8000",
    "criteria": [
        {"name": "Connection success > 99 %", "figure": "99.950 %", "passed": True},
        {"name": "Zero cross-user contamination", "figure": "2 events blocked", "passed": False},
        {"name": "Tool visibility 100 %", "figure": "no data", "passed": None},
    ],
    "slos": [
        {
            "name": "event-delivery",
            "objective": 0.999,
            "window": "28d",
            "sli": {"window": 0.9995},
            "burn_rate": {"5m": None, "1h": 0.5, "6h": 0.25, "1d": 0.5, "3d": 0.5},
            "error_budget_remaining": 0.5,
            "alerts": {"page": False, "ticket": True},
        }
    ],
}


def test_the_markdown_report_has_each_criterion_with_its_figure_and_verdict() -> None:
    text = render_markdown(DOCUMENT)
    assert "| Zero cross-user contamination | 2 events blocked | FAIL |" in text
    assert "| Tool visibility 100 % | no data | no data |" in text
    assert "| event-delivery | 99.9 % | 99.950 % (28d) | 50.0 % |" in text
    assert text.rstrip().endswith("ticket |")


def test_the_table_report_fits_one_terminal_screen() -> None:
    console = Console(record=True, width=100)
    render_table(DOCUMENT, console)
    text = console.export_text()
    assert "PASS" in text and "FAIL" in text and "no data" in text
    assert len(text.splitlines()) <= 24
    assert max(len(line) for line in text.splitlines()) <= 100


def test_slo_report_reads_the_running_sidecar_and_fails_on_a_failed_criterion(
    orphan_sidecar: RunningSidecar,
) -> None:
    wait_for(lambda: slo_doc(orphan_sidecar.url)["probes"], what="a probe")
    result = runner.invoke(
        app, ["slo", "report", "--format", "json", "--sidecar-url", orphan_sidecar.url]
    )
    document = json.loads(result.stdout)
    assert len(document["criteria"]) == 8
    configuration = document["criteria"][5]
    assert configuration["passed"] is False  # the backend is down: not ready
    assert result.exit_code == 1
    table = runner.invoke(
        app, ["slo", "report", "--sidecar-url", orphan_sidecar.url], env={"COLUMNS": "120"}
    )
    assert "Configuration errors caught at start-up" in table.stdout


def test_slo_report_names_the_option_when_no_sidecar_answers() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = runner.invoke(app, ["slo", "report", "--sidecar-url", url])
    assert result.exit_code == 2
    assert "--sidecar-url" in result.stderr and "vigil sidecar" in result.stderr


def test_the_sidecar_refuses_to_start_with_a_bad_slo_file(tmp_path: Path) -> None:
    bad = tmp_path / "slos.yaml"
    bad.write_text("slos: [{name: x, objective: 2, good: a, total: b}]\n")
    result = runner.invoke(app, ["run", "--slo-file", str(bad)])
    assert result.exit_code == 2
    assert "--slo-file" in result.stderr and "objective" in result.stderr


def test_canary_once_prints_every_phase_and_succeeds(backend: BackendProcess) -> None:
    result = runner.invoke(app, ["canary", "--once", "--target-url", backend.base_url])
    assert result.exit_code == 0, result.stdout
    for phase in ("handshake", "agent_started", "agent_thinking", "tool_pair", "agent_completed"):
        assert phase in result.stdout
    assert "success" in result.stdout


def test_canary_once_fails_with_the_phase_blamed_when_the_backend_is_down() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = runner.invoke(app, ["canary", "--once", "--target-url", url])
    assert result.exit_code == 1
    assert "unreachable (phase: connect)" in result.stdout


def test_the_sidecar_refuses_a_memory_limit_that_is_not_positive() -> None:
    result = runner.invoke(app, ["run", "--memory-limit", "0"])
    assert result.exit_code == 2
    assert "--memory-limit" in result.stderr and "positive" in result.stderr
