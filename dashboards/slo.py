"""3. SLOs and error budgets: per SLO its objective, SLI, budget left, burn rates, alert state.

Objective, SLI, budget and burn rates come from the recording rules of ``alerts/`` (summed over
the pods of a namespace, the numbers the burn-rate alerts read); the alert state is the
sidecar's (``vigil_slo_alert_active``, the same multi-window policy) next to Prometheus' own
``ALERTS`` series of the SLO's burn alert. One row per SLO of the sidecar's SLO file.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.models.dashboard import ValueMap, ValueMappingResult, VariableOption

from alerts.config import Config
from alerts.slo_rules import BUDGET, BURN_RATE, ERROR_RATIO, OBJECTIVE, alert_name
from dashboards.common import (
    ALL,
    RULES,
    SIDECAR,
    dashboard,
    graph,
    panel_link,
    q,
    single,
    thresholds,
)
from sidecar.slo.math import ALERT_RULES, WHOLE
from sidecar.slo.spec import SLOSpec

FIRING = ValueMap(
    options={
        "0": ValueMappingResult(text="ok", color="green", index=0),
        "1": ValueMappingResult(text="firing", color="red", index=1),
    }
)


def _row(config: Config, board: db.Dashboard, slo: SLOSpec) -> db.Dashboard:
    name = slo.name
    objective = slo.objective
    board = board.with_row(db.Row(f"{name}: {slo.description.rstrip('.')}"))
    board = board.with_panel(
        single(
            f"{name}: objective",
            f"The share of good events the {name} SLO promises over {slo.window} "
            f"({OBJECTIVE}, from the SLO file).",
            "percentunit",
            q(f'max({OBJECTIVE}{{slo="{name}"}})', "objective", instant=True),
            span=3,
            height=8,
            decimals=2,
        )
    )
    board = board.with_panel(
        single(
            f"{name}: SLI over {slo.window}",
            f'Good out of total over the SLO window (1 - {ERROR_RATIO}{{window="{WHOLE}"}}); '
            "red below the objective. No data: no traffic in the window.",
            "percentunit",
            q(
                f'1 - {ERROR_RATIO}{{{RULES}, slo="{name}", window="{WHOLE}"}}',
                "{{namespace}}",
                instant=True,
            ),
            span=3,
            height=8,
            decimals=3,
            steps=thresholds((None, "red"), (objective, "green")),
        )
    )
    board = board.with_panel(
        single(
            f"{name}: error budget left",
            f"Share of the {slo.window} error budget not yet spent ({BUDGET}); negative when "
            "overspent.",
            "percentunit",
            q(f'{BUDGET}{{{RULES}, slo="{name}"}}', "{{namespace}}", instant=True),
            span=3,
            height=8,
            decimals=1,
            steps=thresholds((None, "red"), (0, "orange"), (0.25, "green")),
        )
    )
    board = board.with_panel(
        single(
            f"{name}: alert state",
            f"Whether the burn-rate alert {alert_name(slo)} fires, per severity: the sidecar's "
            "evaluation (vigil_slo_alert_active) and Prometheus' ALERTS series (zero when it "
            "is not firing).",
            "none",
            q(
                f'max by (severity) (vigil_slo_alert_active{{{SIDECAR}, slo="{name}"}})',
                "sidecar {{severity}}",
                instant=True,
            ),
            q(
                f'max by (severity) (ALERTS{{alertname="{alert_name(slo)}", alertstate="firing"}})'
                " or on() vector(0)",
                "prometheus {{severity}}",
                instant=True,
            ),
            span=3,
            height=8,
            steps=thresholds((None, "green"), (1, "red")),
        ).mappings([FIRING])
    )
    policy = ", ".join(
        f"{rule.severity} {rule.factor:g}x over {rule.long_window} and {rule.short_window}"
        for rule in ALERT_RULES
    )
    board = board.with_panel(
        graph(
            f"{name}: burn rate by window",
            f"How many times faster than the objective allows the budget burns ({BURN_RATE}) "
            f"per window. Alerts: {policy}.",
            "suffix:x",
            q(f'{BURN_RATE}{{{RULES}, slo="{name}"}}', "{{window}} {{namespace}}"),
            steps=thresholds(*_burn_steps()),
        )
    )
    return board.with_panel(
        graph(
            f"{name}: SLI by window",
            f"Good out of total per window (1 - {ERROR_RATIO}); the dashed line is the objective.",
            "percentunit",
            q(f'1 - {ERROR_RATIO}{{{RULES}, slo="{name}"}}', "{{window}} {{namespace}}"),
            min_value=None,
            steps=thresholds((None, "red"), (objective, "green")),
        ).links([panel_link(config, "success", "Success metrics")])
    )


def _burn_steps() -> list[tuple[float | None, str]]:
    colours = ("red", "orange", "yellow", "blue")
    factors = sorted({rule.factor for rule in ALERT_RULES}, reverse=True)
    steps: list[tuple[float | None, str]] = [(None, "green")]
    steps += [
        (factor, colours[i % len(colours)]) for i, factor in reversed(list(enumerate(factors)))
    ]
    return steps


def build(config: Config) -> db.Dashboard:
    board = dashboard(
        config,
        "slo",
        "Each SLO of the sidecar's SLO file: objective, SLI, error budget left, burn rates "
        "and alert state, from the recording rules and the sidecar.",
    )
    board = board.with_variable(
        db.CustomVariable("slo")
        .label("SLO")
        .description("The SLOs of the summary panels; burn-rate alerts link here with one set.")
        .values(",".join(slo.name for slo in config.slos))
        .multi(True)
        .include_all(True)
        .all_value(ALL)
        .current(VariableOption(selected=True, text="All", value="$__all"))
    )
    board = board.with_row(db.Row("All SLOs"))
    board = board.with_panel(
        graph(
            "SLI over the SLO window",
            f'Every SLO\'s SLI over its own window (1 - {ERROR_RATIO}{{window="{WHOLE}"}}).',
            "percentunit",
            q(
                f'1 - {ERROR_RATIO}{{{RULES}, slo=~"$slo", window="{WHOLE}"}}',
                "{{slo}} {{namespace}}",
            ),
            min_value=None,
        )
    )
    board = board.with_panel(
        graph(
            "Error budget left",
            f"Every SLO's error budget left over its window ({BUDGET}); below zero is overspent.",
            "percentunit",
            q(f'{BUDGET}{{{RULES}, slo=~"$slo"}}', "{{slo}} {{namespace}}"),
            min_value=None,
            steps=thresholds((None, "red"), (0, "green")),
        )
    )
    for slo in config.slos:
        board = _row(config, board, slo)
    return board
