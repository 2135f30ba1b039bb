"""SLO recording rules and multi-window, multi-burn-rate alerts (Sloth/Pyrra style).

For every SLO of the sidecar's file, with ``w`` each window of ``sidecar.slo.math.WINDOWS`` and
``window="window"`` the SLO's own window (28d), exactly the sidecar's names and arithmetic:

    vigil_slo:error_ratio{slo, window}            1 - min(good / total, 1)    (absent: no data)
    vigil_slo:burn_rate{slo, window}              error_ratio / (1 - objective)
    vigil_slo:error_budget_remaining_ratio{slo}   1 - burn_rate{window="window"}
    vigil_slo:objective_ratio{slo}                the objective

The alert of an SLO (``Vigil<Name>BudgetBurn``) has one rule per severity; each fires when both
windows of one of its pairs burn strictly faster than the factor, as ``rule_fires`` does.
"""

from __future__ import annotations

from typing import Any

from alerts.config import NS, Config
from alerts.promql import error_ratio
from sidecar.slo.math import ALERT_RULES, SEVERITIES, WHOLE, WINDOWS
from sidecar.slo.spec import SLOSpec

ERROR_RATIO = "vigil_slo:error_ratio"
BURN_RATE = "vigil_slo:burn_rate"
BUDGET = "vigil_slo:error_budget_remaining_ratio"
OBJECTIVE = "vigil_slo:objective_ratio"


def alert_name(slo: SLOSpec) -> str:
    return "Vigil" + "".join(part.capitalize() for part in slo.name.split("-")) + "BudgetBurn"


def recording_groups(config: Config) -> list[dict[str, Any]]:
    groups = []
    by = ", ".join(config.slo_group_by)
    for slo in config.slos:
        job = config.selector(slo.source)
        short = [
            _record(ERROR_RATIO, error_ratio(slo.good, slo.total, job, window, by), slo, window)
            for window in WINDOWS
        ]
        short += [_burn(slo, window) for window in WINDOWS]
        groups.append({"name": f"vigil-slo-{slo.name}", "rules": short})
        whole = [
            _record(ERROR_RATIO, error_ratio(slo.good, slo.total, job, slo.window, by), slo, WHOLE),
            _burn(slo, WHOLE),
            {
                "record": BUDGET,
                "expr": f"1 - max without (window) ({_series(BURN_RATE, slo, WHOLE)})",
                "labels": {"slo": slo.name},
            },
            {
                "record": OBJECTIVE,
                "expr": f"vector({slo.objective!r})",
                "labels": {"slo": slo.name},
            },
        ]
        groups.append(
            {
                "name": f"vigil-slo-{slo.name}-window",
                "interval": config.slo_window_interval,
                "rules": whole,
            }
        )
    return groups


def _series(name: str, slo: SLOSpec, window: str) -> str:
    return f'{name}{{slo="{slo.name}", window="{window}"}}'


def _record(name: str, expr: str, slo: SLOSpec, window: str) -> dict[str, Any]:
    return {"record": name, "expr": expr, "labels": {"slo": slo.name, "window": window}}


def _burn(slo: SLOSpec, window: str) -> dict[str, Any]:
    expr = f'{ERROR_RATIO}{{slo="{slo.name}", window="{window}"}} / (1 - {slo.objective!r})'
    return _record(BURN_RATE, expr, slo, window)


def alert_group(config: Config) -> dict[str, Any]:
    rules = []
    for slo in config.slos:
        for severity in SEVERITIES:
            pairs = [rule for rule in ALERT_RULES if rule.severity == severity]
            rules.append(_burn_alert(config, slo, severity, pairs))
    return {"name": "vigil-slo-alerts", "rules": rules}


def _burn_alert(config: Config, slo: SLOSpec, severity: str, pairs: list[Any]) -> dict[str, Any]:
    def burn(window: str, factor: float) -> str:
        return f'{BURN_RATE}{{slo="{slo.name}", window="{window}"}} > {factor:g}'

    conditions = [
        f"(\n    {burn(p.long_window, p.factor)}\n  and ignoring (window)\n"
        f"    {burn(p.short_window, p.factor)}\n  )"
        for p in pairs
    ]
    expr = "max without (window) (\n  " + "\n  or ignoring (window)\n  ".join(conditions) + "\n)"
    policy = " or ".join(f"{p.factor:g}x over {p.long_window} and {p.short_window}" for p in pairs)
    name = alert_name(slo)
    return {
        "alert": name,
        "expr": expr,
        "labels": {"severity": severity, "slo": slo.name},
        "annotations": {
            "summary": f"The {slo.name} SLO is burning its error budget too fast ({severity}).",
            "description": (
                NS + f"The {slo.name} SLO ({slo.description.rstrip('.')}) "
                f'burns its {slo.window} error budget {{{{ $value | printf "%.1f" }}}} times '
                f"faster than the objective of {slo.objective:.2%} allows "
                f"(threshold: {policy})."
            ),
            "runbook_url": config.runbook(name),
            "dashboard": config.dashboard_url("slo", slo=slo.name),
        },
    }
