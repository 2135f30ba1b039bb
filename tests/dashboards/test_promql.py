"""What the trickier panel queries answer, checked by promtool on synthetic series.

The expressions are the committed ones (variables expanded with their defaults), so a change to a
panel that breaks its meaning fails here: "never" for a backend without a memory limit, PASS and
FAIL of the success criteria, and a zero (not an extra series) for counters with no series yet.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerts.config import load_config
from dashboards.queries import defaults, expand, panel_queries

CONFIG = load_config()
UIDS = {key: board.uid for key, board in CONFIG.dashboards.items()}
VALUES = defaults(CONFIG)
INF = float("inf")
SIDECAR = 'job="vigil-sidecar", instance="a"'
BACKEND = 'job="vigil", instance="b"'


def expr(dashboard: str, panel: str, ref_id: str = "A") -> str:
    for query in panel_queries():
        if (query.dashboard, query.panel, query.ref_id) == (UIDS[dashboard], panel, ref_id):
            return expand(query.expr, VALUES)
    raise LookupError(f"no query {dashboard} / {panel} / {ref_id}")


def case(
    query: str, series: dict[str, str], expected: list[tuple[str, float]], eval_time: str = "30m"
) -> dict[str, Any]:
    return {
        "interval": "1m",
        "input_series": [{"series": name, "values": values} for name, values in series.items()],
        "promql_expr_test": [
            {
                "expr": query,
                "eval_time": eval_time,
                "exp_samples": [{"labels": labels, "value": value} for labels, value in expected],
            }
        ],
    }


def run_promtool(tmp_path: Path, cases: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed (Debian: prometheus)")
    path = tmp_path / "panels-test.yaml"
    document = {"rule_files": [], "evaluation_interval": "1m", "tests": cases}
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return subprocess.run(
        [promtool, "test", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def rss(value: str = "100x40") -> dict[str, str]:
    return {f'vigil_target_memory_bytes{{{SIDECAR}, kind="rss"}}': value}


def time_to_limit_cases() -> list[dict[str, Any]]:
    query = expr("sidecar", "Time to limit")
    instance = '{instance="a", job="vigil-sidecar"}'
    limit = {f"vigil_target_memory_limit_bytes{{{SIDECAR}}}": "1000x40"}
    return [
        # No memory limit: never, whatever the growth.
        case(query, rss(), [(instance, INF)]),
        # A limit and growth: the sidecar's projection.
        case(
            query,
            {
                **rss(),
                **limit,
                f"vigil_target_memory_growth_bytes_per_second{{{SIDECAR}}}": "10x40",
                f"vigil_target_memory_seconds_to_limit{{{SIDECAR}}}": "90x40",
            },
            [(f'{{__name__="vigil_target_memory_seconds_to_limit", {instance[1:]}', 90)],
        ),
        # A limit, RSS shrinking: the sidecar exports no projection; never.
        case(
            query,
            {
                **rss(),
                **limit,
                f"vigil_target_memory_growth_bytes_per_second{{{SIDECAR}}}": "-5x40",
            },
            [(instance, INF)],
        ),
        # A limit, trend not known yet: no data rather than a made-up number.
        case(query, {**rss(), **limit}, []),
    ]


def memory_state_cases() -> list[dict[str, Any]]:
    states = {"ok": "0x40", "warning": "0x40", "critical": "1x40", "unknown": "0x40"}
    series = {
        f'vigil_target_memory_state{{{SIDECAR}, state="{name}"}}': values
        for name, values in states.items()
    }
    return [
        case(expr("sidecar", "Memory state"), series, [('{instance="a", job="vigil-sidecar"}', 2)])
    ]


def success_cases() -> list[dict[str, Any]]:
    connection = expr("success", "Connection success > 99 %", "B")
    five = expr("success", "All five events delivered with confirmation", "D")
    auth = expr("success", "Auth failures explained by reason", "C")

    def sli(slo: str, value: float) -> dict[str, str]:
        return {f'vigil_slo_sli_ratio{{{SIDECAR}, slo="{slo}", window="window"}}': f"{value}x40"}

    objectives = {
        f'vigil_slo_objective_ratio{{{SIDECAR}, slo="event-delivery"}}': "0.999x40",
        f'vigil_slo_objective_ratio{{{SIDECAR}, slo="canary"}}': "0.99x40",
    }
    undelivered = {
        "vigil_events_undelivered_total"
        f'{{{BACKEND}, type="agent_completed", reason="ack_timeout"}}': "0 0 0 1x30"
    }
    healthy = {**sli("event-delivery", 0.9995), **sli("canary", 1), **objectives}
    auth_failure = 'vigil_auth_failures_total{{{}, reason="{}"}}'
    return [
        case(connection, sli("connection-success", 0.995), [("{}", 1)]),
        case(connection, sli("connection-success", 0.99), [("{}", 0)]),
        case(five, healthy, [("{}", 1)]),
        case(five, {**healthy, **undelivered}, [("{}", 0)]),
        case(five, {**healthy, **sli("event-delivery", 0.998)}, [("{}", 0)]),
        case(auth, {auth_failure.format(BACKEND, "token_expired"): "0+1x40"}, [("{}", 1)]),
        case(
            auth,
            {
                auth_failure.format(BACKEND, "token_expired"): "0+1x40",
                auth_failure.format(BACKEND, "mystery"): "0+1x40",
            },
            [("{}", 0)],
        ),
    ]


def zero_cases() -> list[dict[str, Any]]:
    query = expr("overview", "Auth failures by reason")
    return [
        case(query, {'unrelated{job="vigil"}': "1x40"}, [("{}", 0)]),
        case(
            query,
            {f'vigil_auth_failures_total{{{BACKEND}, reason="token_expired"}}': "0+60x40"},
            [('{reason="token_expired"}', 1)],
        ),
    ]


def test_the_panels_answer_what_their_descriptions_promise(tmp_path):
    cases = time_to_limit_cases() + memory_state_cases() + success_cases() + zero_cases()
    result = run_promtool(tmp_path, cases)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_fails_a_wrong_expectation(tmp_path):
    wrong = case(
        expr("sidecar", "Time to limit"), rss(), [('{instance="a", job="vigil-sidecar"}', 5)]
    )
    result = run_promtool(tmp_path, [wrong])
    assert result.returncode != 0
    assert "FAILED" in result.stdout + result.stderr
