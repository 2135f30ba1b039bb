"""The instruments' remembered children, the exemplar rule and the span buffer."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON
from opentelemetry.trace import INVALID_SPAN, format_trace_id
from prometheus_client import CollectorRegistry

from core.telemetry.instruments import Counter, Histogram
from core.telemetry.metrics import exemplar
from core.telemetry.tracing import SpanBuffer


def test_a_remembered_child_is_the_one_prometheus_made_and_counts_in_the_registry():
    registry = CollectorRegistry()
    events = Counter("events", "Events.", ["type"], registry=registry)
    first = events.labels("agent_started")
    first.inc()
    events.labels("agent_started").inc(2)
    events.labels(type="agent_started").inc()  # keyword values reach the same child

    assert events.labels("agent_started") is first
    assert registry.get_sample_value("events_total", {"type": "agent_started"}) == 4
    assert events.labels("agent_completed") is not first


def test_a_histograms_remembered_children_keep_their_buckets():
    registry = CollectorRegistry()
    phases = Histogram("phase", "Phases.", ["phase"], buckets=(0.1, 1), registry=registry)
    phases.labels("triage").observe(0.05)
    phases.labels("triage").observe(0.5)

    assert registry.get_sample_value("phase_bucket", {"phase": "triage", "le": "0.1"}) == 1
    assert registry.get_sample_value("phase_count", {"phase": "triage"}) == 2


def test_an_exemplar_names_only_a_recorded_trace():
    recorded = TracerProvider(sampler=ALWAYS_ON).get_tracer("t").start_span("run")
    unsampled = TracerProvider(sampler=ALWAYS_OFF).get_tracer("t").start_span("run")

    assert exemplar(recorded) == {"trace_id": format_trace_id(recorded.get_span_context().trace_id)}
    assert exemplar(unsampled) is None  # it would lead to no trace
    assert exemplar(INVALID_SPAN) is None


def test_the_span_buffer_keeps_the_most_recent_recorded_spans():
    buffer = SpanBuffer(capacity=2)
    provider = TracerProvider()
    provider.add_span_processor(buffer)
    tracer = provider.get_tracer("t")
    for name in ("one", "two", "three"):
        tracer.start_span(name).end()

    assert [span.name for span in buffer.recent()] == ["two", "three"]
    buffer.shutdown()
    assert buffer.recent() == []
