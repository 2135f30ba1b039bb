"""4. Success metrics, for product owners: each criterion of ``vigil slo report`` as a stat.

One panel per criterion of ``sidecar.criteria.judge``, in the report's order: the figures the
report prints, each coloured by its threshold, and a PASS/FAIL verdict (a ``bool`` query).
SLI figures are the sidecar's own (``vigil_slo_sli_ratio``, exactly what the report reads; the
worst pod when there are several); counter figures are the increase over the longest SLO window,
as the sidecar tracks them for the report.
"""

from __future__ import annotations

from dataclasses import dataclass

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import stat
from grafana_foundation_sdk.models.dashboard import DynamicConfigValue

from alerts.config import Config
from dashboards.common import (
    BACKEND,
    SIDECAR,
    dashboard,
    panel_link,
    q,
    single,
    thresholds,
    verdict_override,
)
from sidecar.criteria import DOCUMENTED_AUTH_REASONS
from sidecar.slo.math import WHOLE

# sidecar/criteria.py: "Connection success > 99 %" passes when the SLI is above this.
CONNECTION_SUCCESS_MIN = 0.99
ZERO = " or on() vector(0)"
GOOD_AT_ZERO = ((None, "green"), (1, "red"))
Steps = tuple[tuple[float | None, str], ...]


@dataclass(frozen=True)
class Figure:
    expr: str
    legend: str
    unit: str
    steps: Steps


@dataclass(frozen=True)
class Criterion:
    title: str
    description: str
    figures: tuple[Figure, ...]
    verdict: str


def _sli(slo: str) -> str:
    return f'min(vigil_slo_sli_ratio{{{SIDECAR}, slo="{slo}", window="{WHOLE}"}})'


def _objective(slo: str) -> str:
    return f'min(vigil_slo_objective_ratio{{{SIDECAR}, slo="{slo}"}})'


def _increase(metric: str, window: str, matchers: str = "") -> str:
    return f"sum(increase({metric}{{{BACKEND}{matchers}}}[{window}])){ZERO}"


def criteria(config: Config) -> tuple[Criterion, ...]:
    objectives = {slo.name: slo.objective for slo in config.slos}
    window = max(config.slos, key=lambda slo: slo.window_s).window
    delivery, canary = _sli("event-delivery"), _sli("canary")
    undelivered = _increase("vigil_events_undelivered_total", window)
    db_errors = _increase("vigil_db_errors_total", window)
    uncategorised = _increase("vigil_db_errors_total", window, ', category=~"unknown|"')
    auth = _increase("vigil_auth_failures_total", window)
    unexplained = _increase(
        "vigil_auth_failures_total", window, f', reason!~"{DOCUMENTED_AUTH_REASONS}"'
    )
    isolation = f"sum(increase(vigil_isolation_violations_total{{{BACKEND}}}[{window}]))"
    return (
        Criterion(
            "Connection success > 99 %",
            "Handshakes accepted out of those accepted or refused for a server-side reason, over "
            f"{window} (connection-success SLI). Passes above 99 %.",
            (
                Figure(
                    _sli("connection-success"),
                    "SLI",
                    "percentunit",
                    ((None, "red"), (CONNECTION_SUCCESS_MIN, "green")),
                ),
            ),
            f"{_sli('connection-success')} > bool {CONNECTION_SUCCESS_MIN}",
        ),
        Criterion(
            "All five events delivered with confirmation",
            f"Events acked within 2 s (event-delivery SLI) and canary runs with all five events in "
            f"order (canary SLI) over {window}, and events never confirmed "
            "(vigil_events_undelivered_total). Passes when both SLIs meet their objectives and "
            "nothing was undelivered; no data until both SLIs have data.",
            (
                Figure(
                    delivery,
                    "acked within 2 s",
                    "percentunit",
                    ((None, "red"), (objectives.get("event-delivery", 1.0), "green")),
                ),
                Figure(
                    canary,
                    "canary runs in order",
                    "percentunit",
                    ((None, "red"), (objectives.get("canary", 1.0), "green")),
                ),
                Figure(undelivered, "undelivered", "short", GOOD_AT_ZERO),
            ),
            f"({delivery} >= bool {_objective('event-delivery')})"
            f" * ({canary} >= bool {_objective('canary')})"
            f" * (({undelivered}) == bool 0)",
        ),
        Criterion(
            "Database errors categorised",
            f"Database errors over {window} (vigil_db_errors_total) and those of category "
            "unknown. Passes when every error has a known category.",
            (
                Figure(db_errors, "errors", "short", ((None, "text"),)),
                Figure(uncategorised, "uncategorised", "short", GOOD_AT_ZERO),
            ),
            f"({uncategorised}) == bool 0",
        ),
        Criterion(
            "Zero cross-user contamination",
            f"Events blocked by the isolation guard over {window} "
            "(vigil_isolation_violations_total). Passes at zero.",
            (Figure(isolation, "events blocked", "short", GOOD_AT_ZERO),),
            f"{isolation} == bool 0",
        ),
        Criterion(
            "Tool visibility 100 %",
            f"tool_completed events acked out of tool_executing events emitted over {window} "
            "(tool-visibility SLI). Passes when every tool call was confirmed.",
            (Figure(_sli("tool-visibility"), "SLI", "percentunit", ((None, "red"), (1, "green"))),),
            f"{_sli('tool-visibility')} >= bool 1",
        ),
        Criterion(
            "Configuration errors caught at start-up",
            'The sidecar\'s last /readyz probe of the backend (vigil_probe_up{probe="readyz"}): '
            "the backend validated its settings at start-up and is ready. Passes when ready.",
            (),
            f'min(vigil_probe_up{{{SIDECAR}, probe="readyz"}}) == bool 1',
        ),
        Criterion(
            "Auth failures explained by reason",
            f"Refused authentications over {window} (vigil_auth_failures_total) and those whose "
            "reason PROTOCOL.md does not document. Passes when every failure has a documented "
            "reason.",
            (
                Figure(auth, "failures", "short", ((None, "text"),)),
                Figure(unexplained, "undocumented", "short", GOOD_AT_ZERO),
            ),
            f"({unexplained}) == bool 0",
        ),
        Criterion(
            "Resource use within limits",
            "The backend's RSS (vigil_target_memory_bytes) and the sidecar's memory state "
            "(vigil_target_memory_state: limit share, time to limit and growth). Passes when the "
            "state is ok; the Sidecar dashboard has the details.",
            (
                Figure(
                    f'max(vigil_target_memory_bytes{{{SIDECAR}, kind="rss"}})',
                    "RSS",
                    "bytes",
                    ((None, "text"),),
                ),
            ),
            f'min(vigil_target_memory_state{{{SIDECAR}, state="ok"}}) == bool 1',
        ),
    )


def _panel(config: Config, criterion: Criterion) -> stat.Panel:
    queries = [q(f.expr, f.legend, instant=True) for f in criterion.figures]
    queries.append(q(criterion.verdict, "verdict", instant=True))
    first = criterion.figures[0] if criterion.figures else None
    panel = single(
        criterion.title,
        criterion.description,
        first.unit if first else "none",
        *queries,
        span=12,
        height=5,
        steps=thresholds(*first.steps) if first else None,
    )
    for index, figure in enumerate(criterion.figures):
        properties = [
            DynamicConfigValue("unit", figure.unit),
            DynamicConfigValue("color", {"mode": "thresholds"}),
            DynamicConfigValue("thresholds", thresholds(*figure.steps).build()),
        ]
        if figure.unit == "short":
            # Counts: increase() extrapolates to the window's edges; show whole events.
            properties.append(DynamicConfigValue("decimals", 0))
        panel = panel.override_by_query(chr(ord("A") + index), properties)
    verdict_ref = chr(ord("A") + len(criterion.figures))
    panel = panel.override_by_query(verdict_ref, verdict_override(verdict_ref))
    if criterion.figures and criterion.figures[0].unit == "bytes":
        panel = panel.links([panel_link(config, "sidecar", "Sidecar: memory")])
    return panel


def build(config: Config) -> db.Dashboard:
    board = dashboard(
        config,
        "success",
        "The success criteria of `vigil slo report`, for product owners: each figure with its "
        "threshold, and whether it passes.",
    )
    board = board.with_row(db.Row("Success criteria (vigil slo report)"))
    for criterion in criteria(config):
        board = board.with_panel(_panel(config, criterion))
    return board
