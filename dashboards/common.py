"""What every Vigil dashboard shares: variables, selectors, links, and the panel helpers.

Conventions (docs/dashboards.md): the data source is the ``datasource`` variable (never a
hard-coded uid); ``job`` (backend), ``sidecar_job``, ``namespace`` and ``pod`` narrow every
query; rates use ``$__rate_interval``; every panel has a unit and a description.
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.builders.common import (
    GraphThresholdsStyleConfig,
    ReduceDataOptions,
    VizLegendOptions,
)
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import (
    BigValueColorMode,
    BigValueGraphMode,
    GraphThresholdsStyleMode,
    LegendDisplayMode,
    LegendPlacement,
)
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DashboardLinkType,
    DataSourceRef,
    DynamicConfigValue,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

from alerts.config import Config

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
# Label matchers of every query: the backend's and the sidecar's series of the chosen pods.
BACKEND = 'job=~"$job", namespace=~"$namespace", pod=~"$pod"'
SIDECAR = 'job=~"$sidecar_job", namespace=~"$namespace", pod=~"$pod"'
# The SLO recording rules keep only the labels of ``slo_group_by`` (namespace).
RULES = 'namespace=~"$namespace"'
TAGS = ["vigil"]
ALL = ".*"
GRID_WIDTH = 24

_P = TypeVar("_P", timeseries.Panel, stat.Panel)
_JOB = re.compile(r'job\s*=~?\s*"([^"]+)"')


def job_of(selector: str) -> str:
    """The job name of a config selector (``job="vigil"`` gives ``vigil``)."""
    match = _JOB.search(selector)
    if match is None:
        raise ValueError(f"selector {selector!r} names no job")
    return match.group(1)


def _job_variable(name: str, label: str, metric: str, default: str) -> db.QueryVariable:
    return (
        db.QueryVariable(name)
        .label(label)
        .description(
            f"Prometheus job of the {label.lower()}; the default comes from alerts/config.yaml."
        )
        .datasource(DATASOURCE)
        .query(f"label_values({metric}, job)")
        .current(VariableOption(selected=True, text=default, value=default))
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
    )


def _all_variable(name: str, query: str) -> db.QueryVariable:
    return (
        db.QueryVariable(name)
        .label(name.capitalize())
        .description(f"Kubernetes {name}; All also matches series without the label.")
        .datasource(DATASOURCE)
        .query(query)
        .multi(True)
        .include_all(True)
        .all_value(ALL)
        .current(VariableOption(selected=True, text="All", value="$__all"))
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
    )


def variables(config: Config) -> list[db.DatasourceVariable | db.QueryVariable]:
    return [
        db.DatasourceVariable("datasource")
        .label("Data source")
        .description("The Prometheus that scrapes the backend and the sidecar.")
        .type("prometheus"),
        _job_variable(
            "job", "Backend", "vigil_ws_active_connections", job_of(config.selector("backend"))
        ),
        _job_variable(
            "sidecar_job", "Sidecar", "vigil_probe_up", job_of(config.selector("sidecar"))
        ),
        _all_variable(
            "namespace", 'label_values(vigil_ws_active_connections{job=~"$job"}, namespace)'
        ),
        _all_variable(
            "pod",
            'label_values(vigil_ws_active_connections{job=~"$job", namespace=~"$namespace"}, pod)',
        ),
    ]


def links(config: Config, current: str) -> list[db.DashboardLink]:
    """A link to each of the other Vigil dashboards, keeping the time range and variables."""
    return [
        db.DashboardLink(board.title.split(" / ")[-1])
        .type(DashboardLinkType.LINK)
        .url(f"/d/{board.uid}")
        .icon("dashboard")
        .tooltip(board.title)
        .include_vars(True)
        .keep_time(True)
        for key, board in config.dashboards.items()
        if key != current
    ]


def panel_link(config: Config, key: str, title: str) -> db.DashboardLink:
    board = config.dashboards[key]
    return (
        db.DashboardLink(title)
        .type(DashboardLinkType.LINK)
        .url(f"/d/{board.uid}?${{__url_time_range}}&${{__all_variables}}")
    )


def dashboard(config: Config, key: str, description: str) -> db.Dashboard:
    board = config.dashboards[key]
    return (
        db.Dashboard(board.title)
        .uid(board.uid)
        .description(description)
        .tags(TAGS)
        .time("now-6h", "now")
        .refresh("30s")
        .timezone("browser")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .variables(variables(config))  # type: ignore[arg-type]
        .links(links(config, key))  # type: ignore[arg-type]
    )


def q(expr: str, legend: str = "", *, instant: bool = False, exemplar: bool = False) -> Any:
    query = prometheus.Dataquery().expr(expr).datasource(DATASOURCE)
    if legend:
        query = query.legend_format(legend)
    query = query.instant() if instant else query.range()
    if exemplar:
        query = query.exemplar(True)
    return query


def _with_queries(panel: _P, queries: tuple[Any, ...]) -> _P:
    for index, query in enumerate(queries):
        panel = panel.with_target(query.ref_id(chr(ord("A") + index)))
    return panel


def thresholds(*steps: tuple[float | None, str]) -> db.ThresholdsConfig:
    return (
        db.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=value, color=color) for value, color in steps])
    )


def graph(
    title: str,
    description: str,
    unit: str,
    *queries: Any,
    span: int = 12,
    height: int = 8,
    min_value: float | None = 0,
    steps: db.ThresholdsConfig | None = None,
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(DATASOURCE)
        .span(span)
        .height(height)
        .fill_opacity(10)
        .legend(
            VizLegendOptions()
            .show_legend(True)
            .display_mode(LegendDisplayMode.TABLE)
            .placement(LegendPlacement.BOTTOM)
            .calcs(["mean", "max", "lastNotNull"])
        )
    )
    if min_value is not None:
        panel = panel.min(min_value)
    if steps is not None:
        panel = panel.thresholds(steps).thresholds_style(
            GraphThresholdsStyleConfig().mode(GraphThresholdsStyleMode.DASHED)
        )
    return _with_queries(panel, queries)


def single(
    title: str,
    description: str,
    unit: str,
    *queries: Any,
    span: int = 6,
    height: int = 4,
    steps: db.ThresholdsConfig | None = None,
    decimals: float | None = None,
    no_value: str = "no data",
) -> stat.Panel:
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(DATASOURCE)
        .span(span)
        .height(height)
        .no_value(no_value)
        .graph_mode(BigValueGraphMode.NONE)
        .color_mode(BigValueColorMode.VALUE)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .thresholds(steps or thresholds((None, "text")))
    )
    if decimals is not None:
        panel = panel.decimals(decimals)
    return _with_queries(panel, queries)


def verdict_override(ref_id: str) -> list[DynamicConfigValue]:
    """Field config of a ``bool`` query: 1 reads PASS (green), 0 reads FAIL (red)."""
    mapping = ValueMap(
        options={
            "1": ValueMappingResult(text="PASS", color="green", index=0),
            "0": ValueMappingResult(text="FAIL", color="red", index=1),
        }
    )
    return [
        DynamicConfigValue("unit", "none"),
        DynamicConfigValue("decimals", 0),
        DynamicConfigValue("mappings", [mapping]),
        DynamicConfigValue("color", {"mode": "thresholds"}),
        DynamicConfigValue("thresholds", thresholds((None, "red"), (1, "green")).build()),
    ]


def finalize(builder: db.Dashboard) -> dict[str, Any]:
    """The dashboard as plain JSON, with panel ids numbered in order (rows included)."""
    document: dict[str, Any] = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    for number, panel in enumerate(document["panels"], start=1):
        panel["id"] = number
    _layout(document["panels"])
    return document


def _layout(panels: list[dict[str, Any]]) -> None:
    """Flow the panels left to right in lines of 24 columns; a row starts a new line."""
    x = y = line_height = 0
    for panel in panels:
        pos = panel["gridPos"]
        full = panel["type"] == "row"
        if full or x + pos["w"] > GRID_WIDTH:
            x, y, line_height = 0, y + line_height, 0
        pos["x"], pos["y"] = x, y
        x += GRID_WIDTH if full else pos["w"]
        line_height = max(line_height, pos["h"])
