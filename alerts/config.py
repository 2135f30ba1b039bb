"""The shared configuration of alerts/ and dashboards/: ``alerts/config.yaml`` plus the SLOs.

One source, as in kubernetes-mixin: scrape-job selectors, the labels SLO rules keep apart, the
runbook URL pattern, the Grafana folder and dashboard uids, and the symptom-alert thresholds.
The SLOs are read with the sidecar's own loader from the sidecar's file, and the alert windows
and burn-rate factors are the sidecar's constants (``sidecar.slo.math``), so the recording
rules, the alerts and the sidecar cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sidecar.slo.spec import SLOSpec, load_slos

ROOT = Path(__file__).resolve().parent.parent
CONFIG_FILE = Path(__file__).with_name("config.yaml")
# Alert descriptions start with the namespace when there is one ("prod: ...").
NS = "{{ with $labels.namespace }}{{ . }}: {{ end }}"


@dataclass(frozen=True)
class Dashboard:
    key: str
    uid: str
    title: str


@dataclass(frozen=True)
class Config:
    slos: tuple[SLOSpec, ...]
    selectors: dict[str, str]
    slo_group_by: tuple[str, ...]
    runbook_url: str
    grafana_url: str
    dashboards: dict[str, Dashboard]
    folder_uid: str
    folder_title: str
    slo_window_interval: str
    thresholds: dict[str, float]

    def selector(self, source: str) -> str:
        """The label matchers of a scrape job (``backend`` or ``sidecar``)."""
        return self.selectors[source]

    def runbook(self, alert: str) -> str:
        return self.runbook_url.format(alert=alert)

    def dashboard_url(self, key: str, **variables: str) -> str:
        query = "&".join(f"var-{name}={value}" for name, value in variables.items())
        url = f"{self.grafana_url.rstrip('/')}/d/{self.dashboards[key].uid}"
        return f"{url}?{query}" if query else url


def load_config(path: Path = CONFIG_FILE) -> Config:
    raw: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    slos = load_slos(ROOT / raw["slo_file"]).slos
    folder = raw["grafana_folder"]
    return Config(
        slos=slos,
        selectors=dict(raw["selectors"]),
        slo_group_by=tuple(raw["slo_group_by"]),
        runbook_url=raw["runbook_url"],
        grafana_url=raw["grafana_url"],
        dashboards={
            key: Dashboard(key, item["uid"], item["title"])
            for key, item in raw["dashboards"].items()
        },
        folder_uid=folder["uid"],
        folder_title=folder["title"],
        slo_window_interval=raw["slo_window_interval"],
        thresholds={name: float(value) for name, value in raw["thresholds"].items()},
    )
