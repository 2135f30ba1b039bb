"""2. Agent execution: where a run spends its time, and what refuses or breaks it.

Latency panels ask for exemplars: with the data source's trace-id destination (see
dashboards/provisioning) a point on a slow bucket opens the run's trace.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.models.dashboard import ValueMap, ValueMappingResult

from alerts.config import Config
from dashboards.common import BACKEND, dashboard, graph, panel_link, q, single, thresholds

B = BACKEND
RATE = "[$__rate_interval]"
ZERO = " or on() vector(0)"
EXEMPLARS = " Exemplars (dots) link to the trace of the run."


def _quantile(metric: str, quantile: float, by: str = "") -> str:
    labels = f"le, {by}" if by else "le"
    return f"histogram_quantile({quantile}, sum by ({labels}) (rate({metric}_bucket{{{B}}}{RATE})))"


def build(config: Config) -> db.Dashboard:
    board = dashboard(
        config,
        "agent",
        "Agent runs phase by phase: run and phase latency, model calls and tokens, tools, "
        "timeouts, preflight refusals and the provider circuit.",
    )
    board = board.with_row(db.Row("Runs"))
    board = board.with_panel(
        graph(
            "Run duration",
            "Duration of completed runs, admission to agent_completed "
            "(vigil_run_duration_seconds); the run-success SLO counts runs within 30 s "
            "(the red line)." + EXEMPLARS,
            "s",
            *(
                q(_quantile("vigil_run_duration_seconds", p), f"p{int(p * 100)}", exemplar=True)
                for p in (0.5, 0.95, 0.99)
            ),
            steps=thresholds((None, "green"), (30, "red")),
        ).links([panel_link(config, "slo", "Run success SLO")])
    )
    board = board.with_panel(
        graph(
            "Phase duration p95 by phase",
            "95th percentile of each phase of a run (vigil_phase_duration_seconds): preflight, "
            "triage, model_call, tool_call." + EXEMPLARS,
            "s",
            q(_quantile("vigil_phase_duration_seconds", 0.95, "phase"), "{{phase}}", exemplar=True),
        )
    )
    board = board.with_panel(
        graph(
            "Run timeouts and failures",
            "Runs per second that hit the run timeout or failed (vigil_runs_total with status "
            "timeout or failed); the overview has every status.",
            "cps",
            q(
                f'sum by (status) (rate(vigil_runs_total{{{B}, status=~"timeout|failed"}}{RATE}))',
                "{{status}}",
            ),
            span=8,
        )
    )
    board = board.with_panel(
        graph(
            "Preflight refusals by reason",
            "Runs refused before agent_started per second, by reason "
            "(vigil_preflight_refusals_total: circuit_open, no_tools, database_<category>, "
            "concurrency limits); "
            "zero when none.",
            "cps",
            q(
                f"sum by (reason) (rate(vigil_preflight_refusals_total{{{B}}}{RATE}))" + ZERO,
                "{{reason}}",
            ),
            span=8,
        )
    )
    board = board.with_panel(
        graph(
            "Runs executing",
            "Agent runs executing now, per backend process (vigil_runs_active).",
            "short",
            q(f"sum by (instance) (vigil_runs_active{{{B}}})", "{{instance}}"),
            span=8,
        )
    )
    board = board.with_row(db.Row("Model calls"))
    board = board.with_panel(
        graph(
            "Model call latency p95",
            "95th percentile of model call duration by operation and model "
            "(gen_ai_client_operation_duration_seconds, OpenTelemetry GenAI conventions)."
            + EXEMPLARS,
            "s",
            q(
                _quantile(
                    "gen_ai_client_operation_duration_seconds",
                    0.95,
                    "gen_ai_operation_name, gen_ai_request_model",
                ),
                "{{gen_ai_operation_name}} {{gen_ai_request_model}}",
                exemplar=True,
            ),
            span=8,
        )
    )
    board = board.with_panel(
        graph(
            "Model calls per second",
            "Model calls per second by model (gen_ai_client_operation_duration_seconds_count).",
            "cps",
            q(
                "sum by (gen_ai_request_model) "
                f"(rate(gen_ai_client_operation_duration_seconds_count{{{B}}}{RATE}))",
                "{{gen_ai_request_model}}",
            ),
            span=8,
        )
    )
    board = board.with_panel(
        graph(
            "Tokens per second by type",
            "Input and output tokens used per second (gen_ai_client_token_usage_sum).",
            "suffix: tokens/s",
            q(
                f"sum by (gen_ai_token_type) (rate(gen_ai_client_token_usage_sum{{{B}}}{RATE}))",
                "{{gen_ai_token_type}}",
            ),
            span=8,
        )
    )
    circuit = single(
        "Provider circuit",
        "The model provider's circuit breaker (vigil_provider_circuit_state): closed, "
        "half open (probing) or open (runs are refused in preflight). The worst backend.",
        "none",
        q(f"max by (provider) (vigil_provider_circuit_state{{{B}}})", "{{provider}}", instant=True),
        span=8,
        steps=thresholds((None, "green"), (1, "orange"), (2, "red")),
    ).mappings(
        [
            ValueMap(
                options={
                    "0": ValueMappingResult(text="closed", color="green", index=0),
                    "1": ValueMappingResult(text="half open", color="orange", index=1),
                    "2": ValueMappingResult(text="open", color="red", index=2),
                }
            )
        ]
    )
    board = board.with_panel(circuit)
    board = board.with_panel(
        graph(
            "Provider circuit over time",
            "vigil_provider_circuit_state per provider and backend: 0 closed, 1 half open, 2 open.",
            "none",
            q(
                f"max by (provider, instance) (vigil_provider_circuit_state{{{B}}})",
                "{{provider}} {{instance}}",
            ),
            span=16,
            steps=thresholds((None, "green"), (1, "orange"), (2, "red")),
        )
    )
    board = board.with_row(db.Row("Tools"))
    board = board.with_panel(
        graph(
            "Tool calls by tool and status",
            "Tool calls per second by tool and status (vigil_tool_calls_total); status error "
            "covers tool errors, timeouts and unknown tools.",
            "cps",
            q(
                f"sum by (tool, status) (rate(vigil_tool_calls_total{{{B}}}{RATE}))",
                "{{tool}} {{status}}",
            ),
            span=8,
        )
    )
    board = board.with_panel(
        graph(
            "Tool visibility by tool",
            "tool_completed events acked out of tool_executing events emitted, per tool "
            "(vigil_tool_events_acked_total over vigil_tool_events_emitted_total; canary left "
            "out); the tool-visibility SLO counts the same events.",
            "percentunit",
            q(
                "sum by (tool) (rate(vigil_tool_events_acked_total"
                f'{{{B}, type="tool_completed"}}{RATE}))\n/\n'
                "sum by (tool) (rate(vigil_tool_events_emitted_total"
                f'{{{B}, type="tool_executing"}}{RATE}))',
                "{{tool}}",
            ),
            span=8,
            min_value=None,
        )
    )
    board = board.with_panel(
        graph(
            "Internal errors in runs and tools",
            "Unexpected exceptions caught around a run or a tool per second "
            '(vigil_internal_errors_total{where=~"run|tool"}); zero when none.',
            "cps",
            q(
                "sum by (where) "
                f'(rate(vigil_internal_errors_total{{{B}, where=~"run|tool"}}{RATE}))' + ZERO,
                "{{where}}",
            ),
            span=8,
        ).links([panel_link(config, "overview", "Chat reliability overview")])
    )
    return board
