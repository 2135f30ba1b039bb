"""Symptom alerts: what is broken right now, whatever the SLOs say.

Each entry names its dashboard; thresholds come from ``alerts/config.yaml``. Rate-like alerts
sum over the pods of a deployment (``without (instance, pod)``) so a spike spread thin still
shows; per-process ones (readiness, memory, loop lag) keep the pod.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alerts.config import NS, Config


@dataclass(frozen=True)
class Symptom:
    name: str
    severity: str
    expr: str
    for_: str
    summary: str
    description: str
    dashboard: str


def symptoms(config: Config) -> list[Symptom]:  # noqa: PLR0915 - one entry per alert
    b, s, t = config.selector("backend"), config.selector("sidecar"), config.thresholds
    return [
        Symptom(
            "VigilBackendDown",
            "page",
            f"up{{{b}}} == 0",
            "2m",
            "A Vigil backend does not answer Prometheus's scrapes.",
            NS + "The backend {{ $labels.instance }} (job {{ $labels.job }}) "
            "has failed every scrape for 2 minutes.",
            "overview",
        ),
        Symptom(
            "VigilBackendNotScraped",
            "page",
            f"absent(up{{{b}}})",
            "5m",
            "Prometheus has no Vigil backend target at all.",
            f"No target of {b} has been scraped for 5 minutes: service discovery or the "
            "scrape configuration lost the backend, so every Vigil alert is blind.",
            "overview",
        ),
        Symptom(
            "VigilSidecarDown",
            "ticket",
            f"up{{{s}}} == 0 or absent(up{{{s}}})",
            "5m",
            "The reliability sidecar is down or not scraped.",
            NS + "The sidecar {{ $labels.instance }} ({{ $labels.job }}) is "
            "not scraped; probes, canary, memory checks and their alerts are blind.",
            "sidecar",
        ),
        Symptom(
            "VigilBackendNotReady",
            "page",
            f'vigil_probe_up{{{s}, probe="readyz"}} == 0',
            "5m",
            "A Vigil backend has reported not ready for 5 minutes.",
            NS + "The sidecar {{ $labels.instance }} gets no 200 from its "
            "backend's /readyz (refused, timed out or 503): new connections are refused.",
            "sidecar",
        ),
        Symptom(
            "VigilCanaryFailing",
            "page",
            "sum without (outcome) (\n"
            f'  increase(vigil_canary_runs_total{{{s}, outcome!="success"}}[10m])\n'
            ")\n/ ignoring (phase) group_left ()\n(\n"
            f"  sum without (outcome, phase) (increase(vigil_canary_runs_total{{{s}}}[10m])) > 0\n"
            f")\n> {t['canary_failure_ratio']:g}",
            "5m",
            "The synthetic canary chat fails in phase {{ $labels.phase }}.",
            NS + "{{ $value | humanizePercentage }} of the canary runs of "
            "{{ $labels.instance }} over 10 minutes failed in phase {{ $labels.phase }}.",
            "sidecar",
        ),
        Symptom(
            "VigilHeartbeatRTTHigh",
            "ticket",
            "histogram_quantile(0.99, "
            f"rate(vigil_heartbeat_rtt_seconds_bucket{{{b}}}[5m]))\n"
            f"> {t['heartbeat_rtt_p99_seconds']:g}",
            "10m",
            "WebSocket heartbeat round trips are slow.",
            NS + "P99 ping-to-pong time on {{ $labels.instance }} is "
            "{{ $value | humanizeDuration }} (threshold "
            f"{t['heartbeat_rtt_p99_seconds']:g}s).",
            "overview",
        ),
        Symptom(
            "VigilEventLoopLagHigh",
            "ticket",
            "histogram_quantile(0.99, "
            f"rate(vigil_event_loop_lag_seconds_bucket{{{b}}}[5m]))\n"
            f"> {t['event_loop_lag_p99_seconds']:g}",
            "10m",
            "The backend's event loop runs timers late.",
            NS + "P99 event-loop lag on {{ $labels.instance }} is "
            "{{ $value | humanizeDuration }} (threshold "
            f"{t['event_loop_lag_p99_seconds']:g}s); acks, heartbeats and sends all wait.",
            "overview",
        ),
        Symptom(
            "VigilMemoryNearLimit",
            "page",
            f'vigil_target_memory_bytes{{{s}, kind="rss"}}\n/ ignoring (kind)\n'
            f"vigil_target_memory_limit_bytes{{{s}}}\n> {t['memory_limit_ratio']:g}",
            "5m",
            "A Vigil backend's memory is close to its limit.",
            NS + "The backend watched by {{ $labels.instance }} uses "
            "{{ $value | humanizePercentage }} of its cgroup memory limit; the kernel kills it at "
            "100 %.",
            "sidecar",
        ),
        Symptom(
            "VigilMemoryLeakSuspected",
            "ticket",
            f"vigil_target_memory_growth_bytes_per_second{{{s}}}\n"
            f"> {t['memory_growth_bytes_per_second']:g}",
            "30m",
            "A Vigil backend's memory keeps growing.",
            NS + "The backend watched by {{ $labels.instance }} grows by "
            "{{ $value | humanize1024 }}B/s (robust trend over 10 minutes); time to its limit: "
            '{{ with printf "vigil_target_memory_seconds_to_limit{instance=%q, job=%q}" '
            "$labels.instance $labels.job | query }}{{ . | first | value | humanizeDuration }}"
            "{{ else }}unknown (no limit){{ end }}.",
            "sidecar",
        ),
        Symptom(
            "VigilDatabaseErrors",
            "ticket",
            "sum without (instance, pod, operation) (\n"
            f"  rate(vigil_db_errors_total{{{b}}}[5m])\n)\n> {t['db_errors_per_second']:g}",
            "5m",
            "The backend's database fails with {{ $labels.category }}.",
            NS + "{{ $value | humanize }} database errors per second of "
            "category {{ $labels.category }} over 5 minutes.",
            "overview",
        ),
        Symptom(
            "VigilAuthFailureSpike",
            "ticket",
            "sum without (instance, pod) (\n"
            f"  rate(vigil_auth_failures_total{{{b}}}[5m])\n)\n"
            f"> {t['auth_failures_per_second']:g}",
            "10m",
            "Many authentications are refused with {{ $labels.reason }}.",
            NS + "{{ $value | humanize }} refused authentications per "
            "second with reason {{ $labels.reason }} over 5 minutes.",
            "overview",
        ),
        Symptom(
            "VigilIsolationViolation",
            "page",
            "sum without (instance, pod) (\n"
            f"  increase(vigil_isolation_violations_total{{{b}}}[15m])\n) > 0",
            "0s",
            "An event was about to reach another user's connection.",
            NS + "The isolation guard blocked {{ $value | humanize }} "
            "events addressed to a different user than the connection's in 15 minutes. It "
            "blocked them, but the code that routed them is wrong.",
            "overview",
        ),
        Symptom(
            "VigilEventsUndelivered",
            "ticket",
            "sum without (instance, pod, type) (\n"
            f"  increase(vigil_events_undelivered_total{{{b}}}[15m])\n)\n"
            f"> {t['undelivered_events_15m']:g}",
            "10m",
            "Agent events were never confirmed by a client ({{ $labels.reason }}).",
            NS + "{{ $value | humanize }} events ended undelivered with "
            "reason {{ $labels.reason }} in 15 minutes.",
            "overview",
        ),
        Symptom(
            "VigilSlowConsumerDisconnects",
            "ticket",
            "sum without (instance, pod) (\n"
            f'  increase(vigil_ws_disconnects_total{{{b}, code="4409"}}[10m])\n)\n'
            f"> {t['slow_consumer_disconnects_10m']:g}",
            "5m",
            "Many connections are closed as slow consumers (4409).",
            NS + "{{ $value | humanize }} connections closed with 4409 "
            "(send queue over its bound) in 10 minutes.",
            "overview",
        ),
        Symptom(
            "VigilHeartbeatTimeoutDisconnects",
            "ticket",
            "sum without (instance, pod) (\n"
            f'  increase(vigil_ws_disconnects_total{{{b}, code="4408"}}[10m])\n)\n'
            f"> {t['heartbeat_timeout_disconnects_10m']:g}",
            "5m",
            "Many connections are closed for unanswered heartbeats (4408).",
            NS + "{{ $value | humanize }} connections closed with 4408 "
            "(pings unanswered) in 10 minutes.",
            "overview",
        ),
        Symptom(
            "VigilProviderCircuitOpen",
            "page",
            f"max_over_time(vigil_provider_circuit_state{{{b}}}[2m]) == 2",
            "3m",
            "The model provider's circuit breaker is open.",
            NS + "The circuit to provider {{ $labels.provider }} on "
            "{{ $labels.instance }} has been open at least once a minute for 3 minutes; preflight "
            "refuses runs with circuit_open.",
            "agent",
        ),
    ]


def symptom_group(config: Config) -> dict[str, Any]:
    rules = []
    for item in symptoms(config):
        rule: dict[str, Any] = {"alert": item.name, "expr": item.expr}
        if item.for_ != "0s":
            rule["for"] = item.for_
        rule["labels"] = {"severity": item.severity}
        rule["annotations"] = {
            "summary": item.summary,
            "description": item.description,
            "runbook_url": config.runbook(item.name),
            "dashboard": config.dashboard_url(item.dashboard),
        }
        rules.append(rule)
    return {"name": "vigil-symptoms", "rules": rules}
