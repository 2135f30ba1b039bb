"""promtool tests of the SLO rules, whose expected values are the sidecar's own arithmetic.

Each SLO gets series for its good and total selectors following one timeline (healthy, a burst
of errors, healthy again), plus a stretch with no traffic and one where the good side has no
series at all. At each check time the expected SLIs, burn rates, budget and alerts come from
``sidecar.slo.math.evaluate`` fed the increases the sidecar would compute on the same samples
(last minus first sample inside ``(t - w, t]``); the recorded values must equal them to 1e-9.

Checks fall half-way between samples, so Prometheus 2's closed range ``[t - w, t]`` and the
sidecar's left-open one hold the same samples; every series starts high (long-lived counters),
so ``increase()``'s extrapolation scales good and total alike and their ratio is unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from alerts.config import Config
from alerts.promql import quote
from alerts.slo_rules import (
    BUDGET,
    BURN_RATE,
    ERROR_RATIO,
    alert_group,
    alert_name,
    recording_groups,
)
from sidecar.slo.math import WHOLE, WINDOWS, Counts, SLOStatus, evaluate
from sidecar.slo.spec import SLOSpec, parse_selector

STEP_S = 120  # series step (2m)
EVAL_MIN = 3  # rules run every 3m: checks at odd multiples of 3m fall between two samples
START = 10_000.0
PER_STEP = 200
TOLERANCE = 1e-9


@dataclass(frozen=True)
class Scenario:
    name: str
    phases: tuple[tuple[int, float], ...]  # (steps, error fraction of the requests in a step)
    checks_min: tuple[int, ...]  # odd multiples of EVAL_MIN
    traffic: bool = True
    good_series: bool = True


SCENARIOS = (
    Scenario(
        "an error burst pages, then tickets, then the budget shows it",
        ((30, 0.0), (15, 0.5), (60, 0.0)),
        (3, 45, 75, 153, 207),
    ),
    Scenario("no traffic is no data and no alert", ((45, 0.0),), (87,), traffic=False),
    Scenario(
        "a good side without series counts as zero good",
        ((30, 0.0),),
        (57,),
        good_series=False,
    ),
)


@dataclass
class Series:
    text: str
    labels: dict[str, str]
    metric: str
    values: list[float]


def slo_test_file(config: Config, rules_file: str) -> dict[str, Any]:
    templates = {
        (rule["alert"], rule["labels"]["severity"]): rule["annotations"]
        for rule in alert_group(config)["rules"]
    }
    return {
        "rule_files": [rules_file],
        "evaluation_interval": f"{EVAL_MIN}m",
        # Recording rules before the alerts that read them, at every evaluation.
        "group_eval_order": [group["name"] for group in recording_groups(config)]
        + [alert_group(config)["name"], "vigil-symptoms"],
        "tests": [
            _test(config, slos, scenario, templates)
            for scenario in SCENARIOS
            for slos in _apart(config)
        ],
    }


def _apart(config: Config) -> list[list[SLOSpec]]:
    """SLOs in sets whose series no other SLO of the set reads (event-delivery's total, every
    emitted event, would also count tool-visibility's tool_executing series)."""
    sets: list[list[SLOSpec]] = []
    empty = Scenario("", ((1, 0.0),), ())
    for slo in config.slos:
        mine = [s for side in _series_for(config, slo, empty) for s in side]
        for group in sets:
            theirs = [
                s for other in group for side in _series_for(config, other, empty) for s in side
            ]
            if not any(_reads(o, s) for o in group for s in mine) and not any(
                _reads(slo, s) for s in theirs
            ):
                group.append(slo)
                break
        else:
            sets.append([slo])
    return sets


def _reads(slo: SLOSpec, series: Series) -> bool:
    return _matches(slo.good, series) or _matches(slo.total, series)


def _test(
    config: Config,
    slos: list[SLOSpec],
    scenario: Scenario,
    templates: dict[tuple[str, str], dict[str, str]],
) -> dict[str, Any]:
    series: list[Series] = []
    alerts: list[dict[str, Any]] = []
    exprs: list[dict[str, Any]] = []
    for slo in slos:
        good, bad = _series_for(config, slo, scenario)
        series += [s for s in (*good, *bad) if s.text not in {x.text for x in series}]
    for slo in slos:
        # Like the sidecar: each side sums every series its selectors match.
        good_side = [s for s in series if _matches(slo.good, s)]
        total_side = [s for s in series if _matches(slo.total, s)]
        for minute in scenario.checks_min:
            status = _expected(slo, good_side, total_side, minute * 60)
            exprs += _value_checks(slo, status, minute)
            alerts += _alert_checks(slo, status, minute, templates)
    return {
        "name": f"{', '.join(slo.name for slo in slos)}: {scenario.name}",
        "interval": f"{STEP_S}s",
        "input_series": [{"series": s.text, "values": _compress(s.values)} for s in series],
        "alert_rule_test": alerts,
        "promql_expr_test": exprs,
    }


def _series_for(
    config: Config, slo: SLOSpec, scenario: Scenario
) -> tuple[list[Series], list[Series]]:
    """One good series and one series counted in total but not good (the errors)."""
    job = dict(_labels(parse_selector(f"x{{{config.selector(slo.source)}}}")))
    good_labels = {**job, **_labels(slo.good[0])}
    good_metric = slo.good[0].metric
    fractions = [f for length, f in scenario.phases for _ in range(length)]
    per_step = PER_STEP if scenario.traffic else 0
    good_values = _cumulative([per_step * (1 - f) for f in fractions])
    bad_values = _cumulative([per_step * f for f in fractions])
    total_values = _cumulative([per_step] * len(fractions))
    good = Series(_text(good_metric, good_labels), good_labels, good_metric, good_values)
    if any(sel.matches(good_metric, good_labels) for sel in slo.total):
        # The good series is part of the total: add the errors as a series of their own.
        sel = next(
            s
            for s in slo.total
            if not any(g.matches(good_metric, _labels(s)) for g in slo.good) or s.matchers == ()
        )
        labels = {**job, **{k: v for k, v in good_labels.items() if k not in job}}
        labels = {k: "failed" for k in labels if k not in job} | job | _labels(sel)
        bad = Series(_text(sel.metric, labels), labels, sel.metric, bad_values)
    else:
        sel = slo.total[0]
        labels = {**job, **_labels(sel)}
        bad = Series(_text(sel.metric, labels), labels, sel.metric, total_values)
    if scenario.good_series:
        return [good], [bad]
    return [], [bad]


def _labels(selector: Any) -> dict[str, str]:
    """Label values an exposition would carry for a selector's matchers."""
    labels = {}
    for matcher in selector.matchers:
        if matcher.op == "=":
            labels[matcher.label] = matcher.value
        elif matcher.op == "=~":
            labels[matcher.label] = matcher.value.split("|")[0]
    return labels


def _matches(selectors: Iterable[Any], series: Series) -> bool:
    return any(sel.matches(series.metric, series.labels) for sel in selectors)


def _text(metric: str, labels: dict[str, str]) -> str:
    body = ", ".join(f"{k}={quote(v)}" for k, v in labels.items())
    return f"{metric}{{{body}}}"


def _cumulative(deltas: list[float]) -> list[float]:
    values, current = [START], START
    for delta in deltas:
        current += delta
        values.append(current)
    return values


def _compress(values: list[float]) -> str:
    """promtool's expanding notation: ``a+bxn`` is a, a+b, ..., a+n*b."""
    parts, index = [], 0
    while index < len(values):
        end = index
        step = values[index + 1] - values[index] if index + 1 < len(values) else 0.0
        while end + 1 < len(values) and values[end + 1] - values[end] == step:
            end += 1
        parts.append(f"{values[index]:g}+{step:g}x{end - index}")
        index = end + 1
    return " ".join(parts)


def _increase(series: list[Series], now_s: float, window_s: float) -> tuple[float, int]:
    total, samples = 0.0, 0
    for s in series:
        inside = [v for i, v in enumerate(s.values) if now_s - window_s < i * STEP_S <= now_s]
        samples = max(samples, len(inside))
        if len(inside) >= 2:
            total += inside[-1] - inside[0]
    return total, samples


def _expected(slo: SLOSpec, good: list[Series], total: list[Series], now_s: float) -> SLOStatus:
    counts: dict[str, Counts | None] = {}
    for key, window_s in (*WINDOWS.items(), (WHOLE, slo.window_s)):
        good_inc, _ = _increase(good, now_s, window_s)
        total_inc, samples = _increase(total, now_s, window_s)
        counts[key] = Counts(good_inc, total_inc) if samples >= 2 else None
    return evaluate(slo.name, slo.objective, slo.window, counts)


def _when(minute: int) -> str:
    return f"{minute}m"


def _value_checks(slo: SLOSpec, status: SLOStatus, minute: int) -> list[dict[str, Any]]:
    checks = []
    for window, sli in status.sli.items():
        burn = status.burn_rate[window]
        checks.append(_close(ERROR_RATIO, slo, window, None if sli is None else 1 - sli, minute))
        checks.append(_close(BURN_RATE, slo, window, burn, minute))
    budget = status.error_budget_remaining
    checks.append(_close(BUDGET, slo, None, budget, minute))
    return checks


def _close(
    metric: str, slo: SLOSpec, window: str | None, value: float | None, minute: int
) -> dict[str, Any]:
    labels = f'slo="{slo.name}"' + ("" if window is None else f', window="{window}"')
    if value is None:
        return {
            "expr": f"absent({metric}{{{labels}}})",
            "eval_time": _when(minute),
            "exp_samples": [{"labels": f"{{{labels}}}", "value": 1}],
        }
    return {
        "expr": f"abs({metric}{{{labels}}} - {value!r}) < bool {TOLERANCE:g}",
        "eval_time": _when(minute),
        "exp_samples": [{"labels": f"{{{labels}}}", "value": 1}],
    }


def _alert_checks(
    slo: SLOSpec,
    status: SLOStatus,
    minute: int,
    templates: dict[tuple[str, str], dict[str, str]],
) -> list[dict[str, Any]]:
    name = alert_name(slo)
    expected = []
    for severity, active in status.alerts.items():
        if not active:
            continue
        first = next(rule for rule in _rules(severity) if rule.name in status.firing)
        value = status.burn_rate[first.long_window]
        annotations = dict(templates[(name, severity)])
        annotations["description"] = (
            annotations["description"]
            .replace("{{ with $labels.namespace }}{{ . }}: {{ end }}", "")
            .replace('{{ $value | printf "%.1f" }}', f"{value:.1f}")
        )
        expected.append(
            {"exp_labels": {"severity": severity, "slo": slo.name}, "exp_annotations": annotations}
        )
    return [{"eval_time": _when(minute), "alertname": name, "exp_alerts": expected}]


def _rules(severity: str) -> list[Any]:
    from sidecar.slo.math import ALERT_RULES

    return [rule for rule in ALERT_RULES if rule.severity == severity]
