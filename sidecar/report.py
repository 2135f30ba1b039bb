"""Rendering the /slo document for people: a rich table, or Markdown for a ticket or a PR."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

SHOWN_BURNS = ("5m", "1h", "6h", "1d", "3d")
# The terminal table keeps to one screen: the burn rates of the two page rules' long windows.
TABLE_BURNS = ("1h", "6h")


def _verdict(passed: bool | None) -> str:
    return "no data" if passed is None else "PASS" if passed else "FAIL"


def _pct(value: float | None, digits: int = 3) -> str:
    return "no data" if value is None else f"{value * 100:.{digits}f} %"


def _alerts(slo: dict[str, Any]) -> str:
    firing = [severity for severity, on in slo["alerts"].items() if on]
    return ", ".join(firing) or "none"


def render_table(document: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    criteria = Table(title=f"Success criteria: {document.get('target_url', '')}")
    criteria.add_column("Criterion")
    criteria.add_column("Figure")
    criteria.add_column("Result")
    styles = {True: "green", False: "bold red", None: "dim"}
    for c in document.get("criteria", []):
        verdict = f"[{styles[c['passed']]}]{_verdict(c['passed'])}[/]"
        criteria.add_row(c["name"], c["figure"], verdict)
    console.print(criteria)
    slos = Table(title="SLOs (SLI and budget over each SLO's window)")
    for column in ("SLO", "Goal", "SLI", "Budget", *(f"Burn {w}" for w in TABLE_BURNS), "Alerts"):
        slos.add_column(column, no_wrap=True)
    for s in document.get("slos", []):
        slos.add_row(
            s["name"],
            _pct(s["objective"], 1),
            _pct(s["sli"]["window"], 2),
            _pct(s["error_budget_remaining"], 0),
            *(_burn(s["burn_rate"].get(w)) for w in TABLE_BURNS),
            _alerts(s),
        )
    console.print(slos)


def _burn(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def render_markdown(document: dict[str, Any]) -> str:
    lines = [
        f"## Vigil success criteria ({document.get('target_url', '')})",
        "",
        "| Criterion | Figure | Result |",
        "| --- | --- | --- |",
    ]
    lines += [
        f"| {c['name']} | {c['figure']} | {_verdict(c['passed'])} |"
        for c in document.get("criteria", [])
    ]
    lines += [
        "",
        "## SLOs",
        "",
        "| SLO | Objective | SLI | Budget left | " + " | ".join(SHOWN_BURNS) + " | Alerts |",
        "| --- " * (5 + len(SHOWN_BURNS)) + "|",
    ]
    for s in document.get("slos", []):
        burns = " | ".join(_burn(s["burn_rate"].get(w)) for w in SHOWN_BURNS)
        lines.append(
            f"| {s['name']} | {_pct(s['objective'], 1)} | {_pct(s['sli']['window'])} "
            f"({s['window']}) | {_pct(s['error_budget_remaining'], 1)} | {burns} | {_alerts(s)} |"
        )
    return "\n".join(lines)
