"""SLO arithmetic: pure functions of counts, no clock, no I/O (docs/sidecar.md, "The formula").

For one SLO and one window, the input is the increase of its good and total counters over the
window (``Counts``; ``None`` when the window holds fewer than two samples). From those:

- SLI = min(good / total, 1); no data when ``Counts`` is None or total <= 0.
- burn rate = (1 - SLI) / (1 - objective); no data when the SLI is no data.
- error budget remaining = 1 - burn rate over the SLO's whole window (negative when overspent);
  no data when that SLI is no data.
- an alert rule fires when both of its windows have data and both burn rates are strictly
  above its factor; a severity is active when any of its rules fires.

"No data" is ``None`` everywhere: it never becomes NaN and never fires an alert.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# The alert windows, shortest first; the SLO's own window is added under the key "window".
WINDOWS: dict[str, float] = {
    "5m": 300.0,
    "30m": 1800.0,
    "1h": 3600.0,
    "2h": 7200.0,
    "6h": 21600.0,
    "1d": 86400.0,
    "3d": 259200.0,
}
WHOLE = "window"


@dataclass(frozen=True)
class AlertRule:
    severity: str
    factor: float
    long_window: str
    short_window: str

    @property
    def name(self) -> str:
        return f"{self.severity}:{self.factor:g}x:{self.long_window}/{self.short_window}"


# Multi-window, multi-burn-rate policy (ARCHITECTURE.md).
ALERT_RULES: tuple[AlertRule, ...] = (
    AlertRule("page", 14.4, "1h", "5m"),
    AlertRule("page", 6.0, "6h", "30m"),
    AlertRule("ticket", 3.0, "1d", "2h"),
    AlertRule("ticket", 1.0, "3d", "6h"),
)
SEVERITIES = ("page", "ticket")


@dataclass(frozen=True)
class Counts:
    """The increase of the good and total counters over one window."""

    good: float
    total: float


@dataclass(frozen=True)
class SLOStatus:
    name: str
    objective: float
    window: str
    counts: dict[str, Counts | None]
    sli: dict[str, float | None]
    burn_rate: dict[str, float | None]
    error_budget_remaining: float | None
    alerts: dict[str, bool]
    firing: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "objective": self.objective,
            "window": self.window,
            "sli": self.sli,
            "burn_rate": self.burn_rate,
            "error_budget_remaining": self.error_budget_remaining,
            "alerts": self.alerts,
            "firing": self.firing,
            "counts": {
                key: None if c is None else {"good": c.good, "total": c.total}
                for key, c in self.counts.items()
            },
        }


def sli(counts: Counts | None) -> float | None:
    if counts is None or counts.total <= 0:
        return None
    # good can exceed total inside a window (an ack for an event emitted before it): clamp.
    return min(max(counts.good, 0.0) / counts.total, 1.0)


def burn_rate(ratio: float | None, objective: float) -> float | None:
    if ratio is None:
        return None
    return (1.0 - ratio) / (1.0 - objective)


def error_budget_remaining(ratio: float | None, objective: float) -> float | None:
    burn = burn_rate(ratio, objective)
    return None if burn is None else 1.0 - burn


def rule_fires(rule: AlertRule, burn: Mapping[str, float | None]) -> bool:
    long_burn, short_burn = burn.get(rule.long_window), burn.get(rule.short_window)
    if long_burn is None or short_burn is None:
        return False
    return long_burn > rule.factor and short_burn > rule.factor


def evaluate(
    name: str, objective: float, window: str, counts: Mapping[str, Counts | None]
) -> SLOStatus:
    """Everything about one SLO from its per-window counts (keys: WINDOWS and "window")."""
    keys = [*WINDOWS, WHOLE]
    per_window = {key: counts.get(key) for key in keys}
    ratios = {key: sli(per_window[key]) for key in keys}
    burns = {key: burn_rate(ratios[key], objective) for key in keys}
    firing = [rule.name for rule in ALERT_RULES if rule_fires(rule, burns)]
    alerts = {
        severity: any(rule.name in firing for rule in ALERT_RULES if rule.severity == severity)
        for severity in SEVERITIES
    }
    return SLOStatus(
        name=name,
        objective=objective,
        window=window,
        counts=per_window,
        sli=ratios,
        burn_rate=burns,
        error_budget_remaining=error_budget_remaining(ratios[WHOLE], objective),
        alerts=alerts,
        firing=firing,
    )
