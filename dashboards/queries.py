"""Every PromQL expression of the dashboards, ready to run, and the metric names it reads.

For the tests and for the live-stack check: ``panel_queries()`` lists each target of each panel
of the committed JSON; ``expand()`` replaces the dashboard variables by the values Grafana would
send with the defaults (the jobs from alerts/config.yaml, All namespaces and pods), so the text
can go straight to Prometheus's ``/api/v1/query``; ``metric_names()`` lists the series names an
expression selects.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alerts.config import ROOT, Config, load_config
from dashboards.common import ALL, job_of

DIR = ROOT / "dashboards"
KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or"}
    | {"unless", "offset", "atan2"}
)
# Number literals, in any case (Inf, +inf, NaN).
NUMBERS = frozenset({"inf", "nan"})
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACES = re.compile(r"\{[^{}]*\}")
_BRACKETS = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NAME = re.compile(r"(?<![\w.:])[a-zA-Z_:][a-zA-Z0-9_:]*")


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str
    ref_id: str
    expr: str
    instant: bool

    @property
    def where(self) -> str:
        return f"{self.dashboard} / {self.panel} / {self.ref_id}"


def load_dashboards(directory: Path = DIR) -> dict[str, dict[str, Any]]:
    """The committed dashboards by uid."""
    documents = (json.loads(path.read_text(encoding="utf-8")) for path in directory.glob("*.json"))
    return {document["uid"]: document for document in documents}


def panels(document: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel of a dashboard, those inside collapsed rows included (rows themselves not)."""
    for panel in document.get("panels", []):
        if panel.get("type") != "row":
            yield panel
        yield from panel.get("panels", [])


def panel_queries(documents: Mapping[str, Mapping[str, Any]] | None = None) -> list[PanelQuery]:
    documents = documents if documents is not None else load_dashboards()
    return [
        PanelQuery(
            uid,
            panel["title"],
            target["refId"],
            target["expr"],
            bool(target.get("instant", False)),
        )
        for uid, document in documents.items()
        for panel in panels(document)
        for target in panel.get("targets", [])
    ]


def defaults(config: Config | None = None) -> dict[str, str]:
    """The variables' default values, as Grafana interpolates them into a query."""
    config = config or load_config()
    return {
        "job": job_of(config.selector("backend")),
        "sidecar_job": job_of(config.selector("sidecar")),
        "namespace": ALL,
        "pod": ALL,
        "slo": ALL,
        "__rate_interval": "1m",
        "__range": "1h",
    }


def expand(expr: str, variables: Mapping[str, str]) -> str:
    """``expr`` with ``$name`` and ``${name}`` replaced; an unknown variable is an error."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in variables:
            raise KeyError(f"no value for ${name} in {expr!r}")
        return variables[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (function names, keywords and labels left out)."""
    text = _STRING.sub('""', expr)
    text = _BRACES.sub("", text)
    text = _BRACKETS.sub("", text)
    text = _GROUPING.sub("", text)
    names: set[str] = set()
    for match in _NAME.finditer(text):
        rest = text[match.end() :].lstrip()
        name = match.group(0)
        if rest.startswith("(") or name in KEYWORDS or name.lower() in NUMBERS:
            continue
        names.add(name)
    return names
