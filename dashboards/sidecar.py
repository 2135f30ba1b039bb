"""5. Sidecar: probes, the canary phase by phase, and the backend's memory against its limit."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.models.dashboard import (
    DashboardRangeMapOptions,
    RangeMap,
    ValueMap,
    ValueMappingResult,
)

from alerts.config import Config
from dashboards.common import SIDECAR, dashboard, graph, panel_link, q, single, thresholds
from sidecar.metrics import MEMORY_STATES

S = SIDECAR
RATE = "[$__rate_interval]"
ZERO = " or on() vector(0)"
# Projections this far out (+Inf included) read "never": no limit, or no growth.
NEVER = 1e18


def build(config: Config) -> db.Dashboard:
    board = dashboard(
        config,
        "sidecar",
        "The reliability sidecar beside each backend: probes, the synthetic canary chat, the "
        "backend's memory and the sidecar's own loops.",
    )
    board = board.with_row(db.Row("Probes"))
    board = board.with_panel(
        single(
            "Probes up",
            "The last /healthz and /readyz probe of the backend (vigil_probe_up): up on HTTP "
            "200; down when refused, timed out or 503. The worst pod.",
            "none",
            q(f"min by (probe) (vigil_probe_up{{{S}}})", "{{probe}}", instant=True),
            span=8,
            height=8,
            steps=thresholds((None, "red"), (1, "green")),
        ).mappings(
            [
                ValueMap(
                    options={
                        "0": ValueMappingResult(text="down", color="red", index=0),
                        "1": ValueMappingResult(text="up", color="green", index=1),
                    }
                )
            ]
        )
    )
    board = board.with_panel(
        graph(
            "Probe duration",
            "Duration of the last probe per probe and pod (vigil_probe_duration_seconds); the "
            "probe timeout is 2 s.",
            "s",
            q(
                f"max by (probe, instance) (vigil_probe_duration_seconds{{{S}}})",
                "{{probe}} {{instance}}",
            ),
            span=16,
        )
    )
    board = board.with_row(db.Row("Canary"))
    board = board.with_panel(
        graph(
            "Canary runs by outcome",
            "Canary runs per second by outcome (vigil_canary_runs_total); success means all "
            "five events in order within 15 s.",
            "cps",
            q(f"sum by (outcome) (rate(vigil_canary_runs_total{{{S}}}{RATE}))", "{{outcome}}"),
            span=8,
        ).links([panel_link(config, "slo", "Canary SLO")])
    )
    board = board.with_panel(
        graph(
            "Canary failures by phase",
            "Failed canary runs per second by the phase blamed and the outcome "
            "(vigil_canary_runs_total, outcome other than success); zero when none.",
            "cps",
            q(
                "sum by (phase, outcome) "
                f'(rate(vigil_canary_runs_total{{{S}, outcome!="success"}}{RATE})){ZERO}',
                "{{phase}} {{outcome}}",
            ),
            span=8,
        )
    )
    board = board.with_panel(
        graph(
            "Canary phase timings p95",
            "95th percentile of each canary phase (vigil_canary_phase_seconds): handshake, "
            "agent_started, agent_thinking, tool_pair, agent_completed, and run for the whole "
            "run (15 s deadline, the red line).",
            "s",
            q(
                "histogram_quantile(0.95, sum by (le, phase) "
                f"(rate(vigil_canary_phase_seconds_bucket{{{S}}}{RATE})))",
                "{{phase}}",
            ),
            span=8,
            steps=thresholds((None, "green"), (15, "red")),
        )
    )
    board = board.with_row(db.Row("Backend memory"))
    state_options = {
        name: ValueMappingResult(text=name, color=colour, index=i)
        for i, (name, colour) in enumerate(
            zip(MEMORY_STATES, ("green", "orange", "red", "text"), strict=True)
        )
    }
    board = board.with_panel(
        single(
            "Memory state",
            "The sidecar's verdict on the backend's memory (vigil_target_memory_state): warning "
            "at 80 % of the limit, 2 h to the limit or 16 KiB/s growth; critical at 90 %, "
            "15 min or 1 MiB/s; unknown when the process is not found.",
            "none",
            q(_state_index(), "{{instance}}", instant=True),
            span=6,
            height=8,
        ).mappings(
            [ValueMap(options={str(i): result for i, result in enumerate(state_options.values())})]
        )
    )
    return _memory(board)


def _state_index() -> str:
    """The current memory state as its index in MEMORY_STATES (ok 0, warning 1, ...)."""
    return " + ".join(
        f'{index} * sum without (state) (vigil_target_memory_state{{{S}, state="{name}"}})'
        for index, name in enumerate(MEMORY_STATES)
    )


def _time_to_limit() -> str:
    """The sidecar's projection; +Inf (never) when there is no limit or RSS is not growing.

    Absent only while a limit exists and the trend is not known yet (the first minute)."""
    rss = f'max without (kind) (vigil_target_memory_bytes{{{S}, kind="rss"}})'
    return (
        f"vigil_target_memory_seconds_to_limit{{{S}}}\n"
        f"or on (instance) (vigil_target_memory_growth_bytes_per_second{{{S}}} * 0 + Inf)\n"
        f"or on (instance) (({rss} * 0 + Inf) unless on (instance) "
        f"vigil_target_memory_limit_bytes{{{S}}})"
    )


def _memory(board: db.Dashboard) -> db.Dashboard:
    board = board.with_panel(
        single(
            "Time to limit",
            "Projected time until the backend's RSS reaches its limit at the current growth "
            "(vigil_target_memory_seconds_to_limit). Never: no memory limit, or RSS is not "
            "growing. No data: a limit exists but the trend needs 10 samples over 60 s first.",
            "s",
            q(_time_to_limit(), "{{instance}}", instant=True),
            span=6,
            height=8,
            steps=thresholds((None, "red"), (900, "orange"), (7200, "green")),
        ).mappings(
            [
                RangeMap(
                    options=DashboardRangeMapOptions(
                        from_val=NEVER,
                        to=None,
                        result=ValueMappingResult(text="never", color="green", index=0),
                    )
                )
            ]
        )
    )
    board = board.with_panel(
        graph(
            "Memory against limit",
            "The backend's RSS and USS (vigil_target_memory_bytes) and its cgroup memory limit "
            "(vigil_target_memory_limit_bytes, absent when there is none).",
            "bytes",
            q(
                f"vigil_target_memory_bytes{{{S}}} or "
                f'label_replace(vigil_target_memory_limit_bytes{{{S}}}, "kind", "limit", "", "")',
                "{{kind}} {{instance}}",
            ),
            span=12,
        )
    )
    board = board.with_panel(
        graph(
            "Memory growth",
            "Theil-Sen slope of the backend's RSS over the last 10 minutes "
            "(vigil_target_memory_growth_bytes_per_second); needs 10 samples over 60 s first. "
            "Warning at 16 KiB/s.",
            "Bps",
            q(f"vigil_target_memory_growth_bytes_per_second{{{S}}}", "{{instance}}"),
            span=24,
            min_value=None,
            steps=thresholds((None, "green"), (16384, "orange"), (1048576, "red")),
        )
    )
    board = board.with_row(db.Row("Sidecar health"))
    board = board.with_panel(
        graph(
            "Scrapes of the backend",
            "The sidecar's scrapes of the backend's /metrics per second by outcome "
            "(vigil_sidecar_scrapes_total); errors leave SLO windows without samples.",
            "cps",
            q(f"sum by (outcome) (rate(vigil_sidecar_scrapes_total{{{S}}}{RATE}))", "{{outcome}}"),
            span=8,
        )
    )
    board = board.with_panel(
        graph(
            "Loop errors and drain requests",
            "Unexpected errors caught at a sidecar loop boundary (vigil_sidecar_loop_errors_total) "
            "and drain requests sent to the backend (vigil_sidecar_drain_requests_total), per "
            "second; zero when none.",
            "cps",
            q(
                f"sum by (loop) (rate(vigil_sidecar_loop_errors_total{{{S}}}{RATE})){ZERO}",
                "error {{loop}}",
            ),
            q(
                f"sum by (result) (rate(vigil_sidecar_drain_requests_total{{{S}}}{RATE})){ZERO}",
                "drain {{result}}",
            ),
            span=8,
        )
    )
    return board.with_panel(
        graph(
            "Sidecar memory",
            "The sidecar's own resident memory (process_resident_memory_bytes): it must stay "
            "small beside the backend it watches.",
            "bytes",
            q(f"process_resident_memory_bytes{{{S}}}", "RSS {{instance}}"),
            span=8,
        )
    )
