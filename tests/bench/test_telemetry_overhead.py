"""Telemetry overhead (docs/benchmarks.md, "telemetry"): the same load against a backend with
tracing and metrics on (the default) and off (OTEL_SDK_DISABLED=true, the OpenTelemetry
SDK's standard switch; VIGIL_METRICS_ENABLED=false), and with tracing sampled one run in ten
(the SDK's head sampler, set by its standard variables), alternating rounds, each on a fresh
backend; throughput lost = 1 - on/off of the median rounds. Then each variant once more under
callgrind: the backend's instructions per run, a share that the machine's noise leaves alone."""

from __future__ import annotations

import json
import statistics

import pytest

from tests.bench.common import LOADGEN, backend, cpu_seconds, fresh_copy, run_loadgen, scaled
from tests.bench.instructions import instructions_per_run
from tests.bench.report import Figure, record

pytestmark = pytest.mark.bench

USERS = 50
RUNS = scaled(20, 2)  # about 1,000 runs a round: shorter rounds were mostly noise
ROUNDS = 5
COUNTED_RUNS = scaled(4, 1)  # per user, under callgrind (about 50 times slower)
TARGET_LOSS = 0.10
OFF = {"OTEL_SDK_DISABLED": "true", "VIGIL_METRICS_ENABLED": "false"}
# The SDK's standard head sampler, as an operator would set it: one run's trace in ten.
SAMPLED = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"}


def one_round(template, tmp_path, name: str, env: dict[str, str]) -> tuple[float, float, float]:
    """(runs/s, p99 ms, backend CPU ms per run) of one round on a fresh database."""
    with backend(fresh_copy(template, tmp_path / f"{name}.db"), **env) as vigil:
        run_loadgen(vigil.ws_url, 5, 2)  # warm-up
        before = cpu_seconds(vigil.pid)
        summary = run_loadgen(vigil.ws_url, USERS, RUNS)
        cpu = cpu_seconds(vigil.pid) - before
    print(name, json.dumps(summary))
    assert summary["runs_not_completed"] == 0 and summary["errors"] == {}, summary
    done = summary["runs_completed"]
    return summary["runs_per_s"], summary["run_latency_ms"]["p99"], cpu / done * 1000


def counted(template, tmp_path, name: str, env: dict[str, str]) -> float:
    """Backend instructions per run (callgrind) on a fresh database."""
    url = fresh_copy(template, tmp_path / f"counted-{name}.db")
    return instructions_per_run(url, tmp_path / f"callgrind-{name}", env, USERS, COUNTED_RUNS)


def test_telemetry_costs_at_most_a_tenth_of_throughput(sqlite_template, tmp_path):
    variants = {"on": {}, "off": OFF, "sampled": SAMPLED}
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in variants}
    for i in range(ROUNDS):
        for name, env in variants.items():
            results[name].append(one_round(sqlite_template, tmp_path, f"{name}-{i}", env))
    median = {k: [statistics.median(r[j] for r in v) for j in range(3)] for k, v in results.items()}
    loss = 1 - median["on"][0] / median["off"][0]
    sampled_loss = 1 - median["sampled"][0] / median["off"][0]
    cpu_share = 1 - median["off"][2] / median["on"][2]
    instructions = {name: counted(sqlite_template, tmp_path, name, env) for name, env in
                    variants.items()}  # fmt: skip
    figures = [
        Figure("runs/s with tracing + metrics on / off (median)",
               f"{median['on'][0]:.1f} / {median['off'][0]:.1f}"),
        Figure("throughput lost to telemetry", f"{loss:.1%}", "<= 10 %", loss <= TARGET_LOSS),
        Figure("backend CPU per run on / off (ms)",
               f"{median['on'][2]:.1f} / {median['off'][2]:.1f} ({cpu_share:.0%} of it telemetry)"),
        Figure("chat-to-completed p99 on / off (ms)",
               f"{median['on'][1]:.0f} / {median['off'][1]:.0f}"),
        Figure("backend instructions per run on / off / sampled (callgrind, millions)",
               " / ".join(f"{instructions[name] / 1e6:.2f}" for name in variants)),
        Figure("telemetry's share of the instructions, every trace / sampled 1 in 10",
               f"{1 - instructions['off'] / instructions['on']:.1%} / "
               f"{1 - instructions['off'] / instructions['sampled']:.1%}"),
        Figure("tracing sampled 1 in 10, metrics on: runs/s, throughput lost",
               f"{median['sampled'][0]:.1f}, {sampled_loss:.1%}"),
        Figure("rounds (runs/s)", "; ".join(
            f"{name}: " + ", ".join(f"{r[0]:.1f}" for r in rounds)
            for name, rounds in results.items())),
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
        "discards. Sampled: OTEL_TRACES_SAMPLER=parentbased_traceidratio with "
        "OTEL_TRACES_SAMPLER_ARG=0.1, the SDK's own head sampler, which an operator sets to "
        "keep one run's trace in ten (the target is judged on the default, every trace). "
        f"{ROUNDS} alternating rounds, a fresh SQLite database and backend each. "
        "Instructions: the same load, "
        f"{USERS} users x {COUNTED_RUNS} runs, against each variant run under valgrind's "
        "callgrind, counting only during the load (tests/bench/instructions.py); unlike CPU "
        "time, the count does not move with what else the machine is doing.",
    )
