"""The backend's Prometheus instruments (ARCHITECTURE.md, "The SLI metric contract").

``Metrics`` owns its own ``CollectorRegistry`` so every app (and every test) has fresh
instruments. Latency histograms take the trace id of a recorded run, exported as an
OpenMetrics exemplar so a slow bucket leads straight to its trace.
"""

from __future__ import annotations

from typing import get_args

from opentelemetry.trace import Span, format_trace_id
from prometheus_client import CollectorRegistry, GCCollector
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_TYPE
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from core.protocol import EventType, RunStatus
from core.telemetry.instruments import Counter, Gauge, Histogram

EVENT_TYPES: tuple[str, ...] = get_args(EventType)
RUN_STATUSES: tuple[str, ...] = get_args(RunStatus)

PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Every histogram that feeds an SLO has a bucket exactly at the SLO's threshold:
# event delivery at 2 s, runs at 30 s, the canary at 15 s.
ACK_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)
RUN_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 60, 120)
PHASE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
RTT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
LOOP_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
MODEL_CALL_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576)


def exemplar(span: Span) -> dict[str, str] | None:
    """The span's trace id as an exemplar, when its trace is recorded: under a sampler
    (``OTEL_TRACES_SAMPLER``) an exemplar of an unsampled run would lead to no trace."""
    context = span.get_span_context()
    if not (context.is_valid and context.trace_flags.sampled):
        return None
    return {"trace_id": format_trace_id(context.trace_id)}


class _Discard:
    """An instrument that records nothing: what every instrument becomes when metrics are
    off (``VIGIL_METRICS_ENABLED=false``, for measuring their cost; never in production)."""

    def labels(self, *_: object, **__: object) -> _Discard:
        return self

    def inc(self, *_: object, **__: object) -> None:
        return None

    dec = set = set_function = observe = inc


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None, *, enabled: bool = True) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        # python_gc_*: the collector's runs by generation; a full collection stalls the loop.
        GCCollector(registry=r)
        self.ws_connections = Counter(
            "vigil_ws_connections",
            "WebSocket handshakes by outcome and reason.",
            ["outcome", "reason"],
            registry=r,
        )
        self.ws_active = Gauge(
            "vigil_ws_active_connections", "Open WebSocket connections.", registry=r
        )
        self.ws_disconnects = Counter(
            "vigil_ws_disconnects",
            "Closed WebSocket connections by close code.",
            ["code"],
            registry=r,
        )
        self.frames_rejected = Counter(
            "vigil_ws_frames_rejected",
            "Client frames answered with an error frame, by error code.",
            ["code"],
            registry=r,
        )
        self.events_emitted = Counter(
            "vigil_events_emitted", "Agent events emitted, by type.", ["type"], registry=r
        )
        self.events_acked = Counter(
            "vigil_events_acked", "Agent events acked by a client, by type.", ["type"], registry=r
        )
        self.events_redelivered = Counter(
            "vigil_events_redelivered", "Agent events sent again.", ["type"], registry=r
        )
        self.events_undelivered = Counter(
            "vigil_events_undelivered",
            "Agent events never confirmed by a client.",
            ["type", "reason"],
            registry=r,
        )
        self.events_pending_ack = Gauge(
            "vigil_events_pending_ack",
            "Emitted events still waiting for a client ack (the ack window's size).",
            registry=r,
        )
        self.tool_events_emitted = Counter(
            "vigil_tool_events_emitted",
            "tool_executing/tool_completed events emitted, by tool.",
            ["tool", "type"],
            registry=r,
        )
        self.tool_events_acked = Counter(
            "vigil_tool_events_acked",
            "tool_executing/tool_completed events acked by a client, by tool.",
            ["tool", "type"],
            registry=r,
        )
        self.ack_latency = Histogram(
            "vigil_event_ack_latency_seconds",
            "Time from an event's emission to its client ack.",
            ["type"],
            buckets=ACK_LATENCY_BUCKETS,
            registry=r,
        )
        self.runs = Counter("vigil_runs", "Finished agent runs by status.", ["status"], registry=r)
        self.runs_active = Gauge("vigil_runs_active", "Agent runs executing.", registry=r)
        self.runs_fenced = Counter(
            "vigil_runs_fenced",
            "Runs stopped here because another replica had taken over their lease.",
            registry=r,
        )
        self.preflight_refusals = Counter(
            "vigil_preflight_refusals",
            "Runs refused before agent_started, by reason.",
            ["reason"],
            registry=r,
        )
        self.run_duration = Histogram(
            "vigil_run_duration_seconds",
            "Duration of an agent run, admission to agent_completed.",
            buckets=RUN_DURATION_BUCKETS,
            registry=r,
        )
        self.phase_duration = Histogram(
            "vigil_phase_duration_seconds",
            "Duration of each phase of a run.",
            ["phase"],
            buckets=PHASE_BUCKETS,
            registry=r,
        )
        self.tool_calls = Counter(
            "vigil_tool_calls", "Tool calls by tool and status.", ["tool", "status"], registry=r
        )
        self.db_errors = Counter(
            "vigil_db_errors",
            "Database failures by category and operation.",
            ["category", "operation"],
            registry=r,
        )
        self.auth_failures = Counter(
            "vigil_auth_failures", "Refused authentications by reason.", ["reason"], registry=r
        )
        self.isolation_violations = Counter(
            "vigil_isolation_violations",
            "Events blocked because their user was not the connection's user.",
            registry=r,
        )
        self.resumes = Counter(
            "vigil_resumes", "Resume requests by outcome.", ["recovered"], registry=r
        )
        self.heartbeat_rtt = Histogram(
            "vigil_heartbeat_rtt_seconds",
            "Ping to pong round-trip time.",
            buckets=RTT_BUCKETS,
            registry=r,
        )
        self.loop_lag = Histogram(
            "vigil_event_loop_lag_seconds",
            "How late the event loop ran a timer it was asked to run.",
            buckets=LOOP_LAG_BUCKETS,
            registry=r,
        )
        self.circuit_state = Gauge(
            "vigil_provider_circuit_state",
            "Model provider circuit: 0 closed, 1 half open, 2 open.",
            ["provider"],
            registry=r,
        )
        self.internal_errors = Counter(
            "vigil_internal_errors",
            "Unexpected exceptions caught at a boundary, by where they were caught.",
            ["where"],
            registry=r,
        )
        self.genai_duration = Histogram(
            "gen_ai_client_operation_duration_seconds",
            "GenAI operation duration (OpenTelemetry semantic conventions).",
            ["gen_ai_operation_name", "gen_ai_request_model"],
            buckets=MODEL_CALL_BUCKETS,
            registry=r,
        )
        self.genai_tokens = Histogram(
            "gen_ai_client_token_usage",
            "Tokens used per model call (OpenTelemetry semantic conventions).",
            ["gen_ai_token_type"],
            buckets=TOKEN_BUCKETS,
            registry=r,
        )

        self._prime_sli_series()
        if not enabled:
            # /metrics still answers (every series at its primed zero); nothing is recorded.
            for name, value in list(vars(self).items()):
                if isinstance(value, Counter | Gauge | Histogram):
                    setattr(self, name, _Discard())

    def _prime_sli_series(self) -> None:
        """Create the series the SLOs read, at zero: a counter's first sample is otherwise
        lost to rate() and increase(), and with it the first chat after a start."""
        for event_type in EVENT_TYPES:
            self.events_emitted.labels(event_type)
            self.events_acked.labels(event_type)
            self.events_redelivered.labels(event_type)
            self.ack_latency.labels(event_type)
        for status in RUN_STATUSES:
            self.runs.labels(status)
        self.ws_connections.labels("accepted", "")
        self.ws_connections.labels("rejected", "not_ready")
        self.isolation_violations.inc(0)

    def exposition(self, accept: str) -> tuple[bytes, str]:
        """The registry's samples, in OpenMetrics (with exemplars) when the scraper asks."""
        if "application/openmetrics-text" in accept:
            return generate_openmetrics(self.registry), OPENMETRICS_TYPE
        return generate_latest(self.registry), PROMETHEUS_TYPE
