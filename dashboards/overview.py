"""1. Chat reliability overview: what SREs look at first.

Connections and handshake outcomes, event emit/ack rates and ack latency, redeliveries and
undelivered events, runs by status, and every error counter of the backend.
"""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders import dashboard as db

from alerts.config import Config
from dashboards.common import BACKEND, dashboard, graph, panel_link, q, single, thresholds

B = BACKEND
RATE = "[$__rate_interval]"
# `or on() vector(0)`: a counter with no series yet (nothing went wrong) reads zero, truthfully.
ZERO = " or on() vector(0)"


def _rate(metric: str, by: str = "", matchers: str = "") -> str:
    grouping = f"sum by ({by}) " if by else "sum "
    return f"{grouping}(rate({metric}{{{B}{matchers}}}{RATE}))"


def _quantiles(metric: str, *, exemplar: bool = False) -> list[Any]:
    return [
        q(
            f"histogram_quantile({quantile}, sum by (le) (rate({metric}_bucket{{{B}}}{RATE})))",
            f"p{int(quantile * 100)}",
            exemplar=exemplar,
        )
        for quantile in (0.5, 0.95, 0.99)
    ]


def build(config: Config) -> db.Dashboard:
    board = dashboard(
        config,
        "overview",
        "Chat reliability at a glance: connections, event delivery, runs and errors.",
    )
    board = board.with_row(db.Row("Connections"))
    board = board.with_panel(
        single(
            "Backends up",
            "Backend processes Prometheus scraped successfully (up == 1), out of the targets.",
            "short",
            q(f"sum(up{{{B}}})", "up", instant=True),
            span=4,
            steps=thresholds((None, "red"), (1, "green")),
        )
    )
    board = board.with_panel(
        single(
            "Open connections",
            "WebSocket connections open now on the selected backends "
            "(vigil_ws_active_connections).",
            "short",
            q(f"sum(vigil_ws_active_connections{{{B}}})", "open", instant=True),
            span=4,
        )
    )
    board = board.with_panel(
        single(
            "Runs executing",
            "Agent runs executing now (vigil_runs_active).",
            "short",
            q(f"sum(vigil_runs_active{{{B}}})", "runs", instant=True),
            span=4,
        )
    )
    board = board.with_panel(
        single(
            "Isolation violations in range",
            "Events blocked because their user was not the connection's user "
            "(vigil_isolation_violations_total). Anything above zero pages at once.",
            "short",
            q(f"sum(increase(vigil_isolation_violations_total{{{B}}}[$__range]))", instant=True),
            span=4,
            decimals=0,
            steps=thresholds((None, "green"), (1, "red")),
        )
    )
    board = board.with_panel(
        graph(
            "Open connections by backend",
            "vigil_ws_active_connections per backend process.",
            "short",
            q(f"sum by (instance) (vigil_ws_active_connections{{{B}}})", "{{instance}}"),
            span=8,
        )
    )
    board = board.with_panel(
        graph(
            "Handshake outcomes",
            "WebSocket handshakes per second by outcome and refusal reason "
            "(vigil_ws_connections_total); accepted ones have an empty reason.",
            "cps",
            q(_rate("vigil_ws_connections_total", "outcome, reason"), "{{outcome}} {{reason}}"),
            span=8,
        )
    )
    board = board.with_panel(
        graph(
            "Auth failures by reason",
            "Refused authentications per second by reason (vigil_auth_failures_total); "
            "zero when there were none.",
            "cps",
            q(_rate("vigil_auth_failures_total", "reason") + ZERO, "{{reason}}"),
            span=8,
        )
    )
    board = board.with_row(db.Row("Event delivery"))
    board = board.with_panel(
        graph(
            "Events emitted and acked",
            "Agent events emitted and acked by a client per second (vigil_events_emitted_total, "
            "vigil_events_acked_total); canary traffic is left out.",
            "cps",
            q(_rate("vigil_events_emitted_total"), "emitted"),
            q(_rate("vigil_events_acked_total"), "acked"),
            span=8,
        ).links([panel_link(config, "slo", "Event delivery SLO")])
    )
    board = board.with_panel(
        graph(
            "Events emitted by type",
            "Agent events emitted per second by event type (vigil_events_emitted_total).",
            "cps",
            q(_rate("vigil_events_emitted_total", "type"), "{{type}}"),
            span=8,
        )
    )
    board = board.with_panel(
        graph(
            "Ack latency percentiles",
            "Time from an event's emission to its client ack (vigil_event_ack_latency_seconds); "
            "the event-delivery SLO counts events acked within 2 s (the red line).",
            "s",
            *_quantiles("vigil_event_ack_latency_seconds"),
            span=8,
            steps=thresholds((None, "green"), (2, "red")),
        )
    )
    board = board.with_panel(
        graph(
            "Redeliveries by type",
            "Resends of agent events not acked in time, per second "
            "(vigil_events_redelivered_total; one event resent three times counts three); "
            "zero when there were none.",
            "cps",
            q(_rate("vigil_events_redelivered_total", "type") + ZERO, "{{type}}"),
            span=8,
        )
    )
    board = board.with_panel(
        graph(
            "Events awaiting an ack",
            "Emitted events waiting for a client ack, per backend (vigil_events_pending_ack, the "
            "ack window's size; canary events included).",
            "short",
            q(f"sum by (instance) (vigil_events_pending_ack{{{B}}})", "{{instance}}"),
            span=8,
        )
    )
    board = board.with_panel(
        graph(
            "Undelivered events by type and reason",
            "Events still unacked after their retry budget, per second "
            "(vigil_events_undelivered_total): ack_timeout (a connection had it, no client "
            "confirmed), no_connection (the owner was away; it waits for a resume), "
            "persist_<category> (the database could not store it); zero when none.",
            "cps",
            q(
                _rate("vigil_events_undelivered_total", "type, reason") + ZERO,
                "{{type}} {{reason}}",
            ),
            span=8,
        )
    )
    board = board.with_row(db.Row("Runs"))
    board = board.with_panel(
        graph(
            "Runs by status",
            "Admitted runs ending per second by status (vigil_runs_total): completed, failed, "
            "timeout, cancelled. Runs refused by preflight are on the agent execution dashboard.",
            "cps",
            q(_rate("vigil_runs_total", "status"), "{{status}}"),
            span=12,
        ).links([panel_link(config, "agent", "Agent execution")])
    )
    board = board.with_panel(
        graph(
            "Resumes by outcome",
            "Resume requests per second by whether the missed events were recovered "
            "(vigil_resumes_total); zero when none.",
            "cps",
            q(_rate("vigil_resumes_total", "recovered") + ZERO, "recovered={{recovered}}"),
            span=12,
        )
    )
    board = board.with_row(db.Row("Errors"))
    errors = (
        (
            "Database errors by category",
            "Database failures per second by category and operation (vigil_db_errors_total); "
            "category unknown means an error the taxonomy missed.",
            "vigil_db_errors_total",
            "category, operation",
            "{{category}} {{operation}}",
        ),
        (
            "Internal errors by boundary",
            "Unexpected exceptions caught at a boundary (run, tool, frame, delivery_sweep) per "
            "second "
            "(vigil_internal_errors_total); each has a log line with its traceback.",
            "vigil_internal_errors_total",
            "where",
            "{{where}}",
        ),
        (
            "Rejected frames by error code",
            "Client frames answered with an error frame per second, by code "
            "(vigil_ws_frames_rejected_total).",
            "vigil_ws_frames_rejected_total",
            "code",
            "{{code}}",
        ),
        (
            "Disconnects by close code",
            "Closed WebSocket connections per second by close code (vigil_ws_disconnects_total): "
            "4408 heartbeat timeout, 4409 slow consumer, 1000/1001 normal.",
            "vigil_ws_disconnects_total",
            "code",
            "{{code}}",
        ),
    )
    for title, description, metric, by, legend in errors:
        board = board.with_panel(
            graph(
                title,
                description + " Zero when none.",
                "cps",
                q(_rate(metric, by) + ZERO, legend),
                span=12,
            )
        )
    board = board.with_row(db.Row("Process health"))
    board = board.with_panel(
        graph(
            "Heartbeat round-trip time",
            "Ping to pong round-trip time percentiles (vigil_heartbeat_rtt_seconds).",
            "s",
            *_quantiles("vigil_heartbeat_rtt_seconds"),
            span=12,
        )
    )
    board = board.with_panel(
        graph(
            "Event-loop lag",
            "How late the backend's event loop ran a timer, percentiles "
            "(vigil_event_loop_lag_seconds). Sustained lag delays every connection.",
            "s",
            *_quantiles("vigil_event_loop_lag_seconds"),
            span=12,
        )
    )
    return board
