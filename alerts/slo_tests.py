"""promtool tests of the SLO rules, whose expected values are the sidecar's own computation.

Each SLO gets series for its good and total selectors following one timeline (healthy, a burst
of errors, healthy again), plus a stretch with no traffic and one where the good side has no
series at all. The very same samples are fed, at the same timestamps, to the sidecar's own
``SLOTracker`` (with its SQLite ``SampleStore`` in memory and an injected clock); at each check
time the SLIs, burn rates, budget and alerts it reports are what the recorded series and the
alerts must show, to 1e-9.

Series are sampled every 2m and rules run every 90s; checks are at odd multiples of 90s, so no
window's left edge ever falls on a sample (every window is a multiple of 2m, or 5m): Prometheus
2's closed range ``[t - w, t]`` and the sidecar's left-open ``(t - w, t]`` hold the same
samples. Some checks put the 5m and 30m windows across the start and the end of the burst,
where a different set of samples would give a different ratio. Every series starts high
(long-lived counters) and all are sampled together, so ``increase()``'s extrapolation scales
good and total alike and their ratio is the sidecar's unextrapolated one.
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
from sidecar.slo.math import SLOStatus
from sidecar.slo.samples import SampleStore
from sidecar.slo.spec import SLOConfig, SLOSpec, parse_selector
from sidecar.slo.tracker import Sample, SLOTracker

STEP_S = 120  # series step (2m)
EVAL_S = 90  # rules run every 90s; checks at odd multiples fall between two samples
START = 10_000.0
PER_STEP = 200
TOLERANCE = 1e-9


@dataclass(frozen=True)
class Scenario:
    name: str
    phases: tuple[tuple[int, float], ...]  # (steps, error fraction of the requests in a step)
    checks: tuple[int, ...]  # evaluation numbers, odd: checked at n * EVAL_S
    traffic: bool = True
    good_series: bool = True


SCENARIOS = (
    Scenario(
        "an error burst pages, then tickets, then the budget shows it",
        # 4.5m; 61.5m and 91.5m (short windows across the burst's edges); 76.5m; 154.5m; 208.5m
        ((30, 0.0), (15, 0.5), (60, 0.0)),
        (3, 41, 51, 61, 103, 139),
    ),
    Scenario("no traffic is no data and no alert", ((45, 0.0),), (57,), traffic=False),
    Scenario(
        "a good side without series counts as zero good",
        ((30, 0.0),),
        (37,),
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
        "evaluation_interval": f"{EVAL_S}s",
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
    tracker, clock = _sidecar_tracker(slos, series)
    for number in scenario.checks:
        now_s = number * EVAL_S
        clock.now = float(now_s)
        for slo, status in zip(slos, tracker.evaluate(), strict=True):
            exprs += _value_checks(slo, status, now_s)
            alerts += _alert_checks(slo, status, now_s, templates)
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


@dataclass
class _Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


def _sidecar_tracker(slos: list[SLOSpec], series: list[Series]) -> tuple[SLOTracker, _Clock]:
    """The sidecar's tracker, fed every sample of ``series`` at its timestamp, as its scrape
    loop would (each source sees every series; its selectors pick theirs)."""
    store = SampleStore(":memory:", retention_s=max(slo.window_s for slo in slos) * 2)
    clock = _Clock()
    tracker = SLOTracker(SLOConfig(tuple(slos), "alerts/slo_tests"), store, clock)
    for index in range(max(len(s.values) for s in series)):
        batch = [
            Sample(s.metric, s.labels, s.values[index]) for s in series if index < len(s.values)
        ]
        for source in {slo.source for slo in slos}:
            tracker.observe(source, batch, float(index * STEP_S))
    return tracker, clock


def _when(seconds: int) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{minutes}m{rest}s" if rest else f"{minutes}m"


def _value_checks(slo: SLOSpec, status: SLOStatus, now_s: int) -> list[dict[str, Any]]:
    checks = []
    for window, sli in status.sli.items():
        burn = status.burn_rate[window]
        checks.append(_close(ERROR_RATIO, slo, window, None if sli is None else 1 - sli, now_s))
        checks.append(_close(BURN_RATE, slo, window, burn, now_s))
    budget = status.error_budget_remaining
    checks.append(_close(BUDGET, slo, None, budget, now_s))
    return checks


def _close(
    metric: str, slo: SLOSpec, window: str | None, value: float | None, now_s: int
) -> dict[str, Any]:
    labels = f'slo="{slo.name}"' + ("" if window is None else f', window="{window}"')
    if value is None:
        return {
            "expr": f"absent({metric}{{{labels}}})",
            "eval_time": _when(now_s),
            "exp_samples": [{"labels": f"{{{labels}}}", "value": 1}],
        }
    return {
        "expr": f"abs({metric}{{{labels}}} - {value!r}) < bool {TOLERANCE:g}",
        "eval_time": _when(now_s),
        "exp_samples": [{"labels": f"{{{labels}}}", "value": 1}],
    }


def _alert_checks(
    slo: SLOSpec,
    status: SLOStatus,
    now_s: int,
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
    return [{"eval_time": _when(now_s), "alertname": name, "exp_alerts": expected}]


def _rules(severity: str) -> list[Any]:
    from sidecar.slo.math import ALERT_RULES

    return [rule for rule in ALERT_RULES if rule.severity == severity]
