"""Telemetry overhead (docs/benchmarks.md, "telemetry"): the same load against a backend with
tracing and metrics on (the default) and off (OTEL_SDK_DISABLED=true, the OpenTelemetry
SDK's standard switch; VIGIL_METRICS_ENABLED=false), alternating rounds, each on a fresh
backend; throughput lost = 1 - on/off of the median rounds."""

from __future__ import annotations

import json
import statistics

import pytest

from tests.bench.common import LOADGEN, backend, cpu_seconds, run_loadgen, scaled
from tests.bench.report import Figure, record

pytestmark = pytest.mark.bench

USERS = 50
RUNS = scaled(6, 2)
ROUNDS = 3
TARGET_LOSS = 0.10
OFF = {"OTEL_SDK_DISABLED": "true", "VIGIL_METRICS_ENABLED": "false"}


def one_round(template, tmp_path, name: str, env: dict[str, str]) -> tuple[float, float, float]:
    """(runs/s, p99 ms, backend CPU ms per run) of one round on a fresh database."""
    import shutil

    path = tmp_path / f"{name}.db"
    shutil.copy(template, path)
    with backend(f"sqlite+aiosqlite:///{path}", **env) as vigil:
        run_loadgen(vigil.ws_url, 5, 2)  # warm-up
        before = cpu_seconds(vigil.pid)
        summary = run_loadgen(vigil.ws_url, USERS, RUNS)
        cpu = cpu_seconds(vigil.pid) - before
    print(name, json.dumps(summary))
    assert summary["runs_not_completed"] == 0 and summary["errors"] == {}, summary
    done = summary["runs_completed"]
    return summary["runs_per_s"], summary["run_latency_ms"]["p99"], cpu / done * 1000


def test_telemetry_costs_at_most_a_tenth_of_throughput(sqlite_template, tmp_path):
    results: dict[str, list[tuple[float, float, float]]] = {"on": [], "off": []}
    for i in range(ROUNDS):
        results["on"].append(one_round(sqlite_template, tmp_path, f"on-{i}", {}))
        results["off"].append(one_round(sqlite_template, tmp_path, f"off-{i}", OFF))
    median = {k: [statistics.median(r[j] for r in v) for j in range(3)] for k, v in results.items()}
    loss = 1 - median["on"][0] / median["off"][0]
    cpu_share = 1 - median["off"][2] / median["on"][2]
    figures = [
        Figure("runs/s with tracing + metrics on / off (median)",
               f"{median['on'][0]:.1f} / {median['off'][0]:.1f}"),
        Figure("throughput lost to telemetry", f"{loss:.1%}", "<= 10 %", loss <= TARGET_LOSS),
        Figure("backend CPU per run on / off (ms)",
               f"{median['on'][2]:.1f} / {median['off'][2]:.1f} ({cpu_share:.0%} of it telemetry)"),
        Figure("chat-to-completed p99 on / off (ms)",
               f"{median['on'][1]:.0f} / {median['off'][1]:.0f}"),
        Figure("rounds (runs/s)", "on: " + ", ".join(f"{r[0]:.1f}" for r in results["on"])
               + "; off: " + ", ".join(f"{r[0]:.1f}" for r in results["off"])),
    ]  # fmt: skip
    record(
        "telemetry",
        "4. Telemetry overhead",
        LOADGEN.format(url="URL", users=USERS, runs=RUNS)
        + " against vigil serve with and without OTEL_SDK_DISABLED=true "
        "VIGIL_METRICS_ENABLED=false (tests/bench/test_telemetry_overhead.py)",
        figures,
        notes="Tracing on means the embedded default: every span (run, phases, model and tool "
        "calls, each batch of events and its transaction, each chat's admission, the SQL "
        "statements of other queries, the FastAPI handshake) recorded to the in-memory buffer; "
        "OTEL_SDK_DISABLED=true makes the SDK hand out no-op tracers. VIGIL_METRICS_ENABLED is "
        "a setting added for this bench (default true): off, every Prometheus instrument "
        f"discards. {ROUNDS} alternating rounds, a fresh SQLite database and backend each.",
    )
