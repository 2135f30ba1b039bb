"""``current_span`` does what the SDK's ``start_as_current_span`` does."""

import asyncio

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from core.telemetry.spans import current_span


@pytest.fixture
def traced():
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    return provider.get_tracer("test"), spans


def test_the_span_is_current_inside_the_block_and_ended_after_it(traced):
    tracer, spans = traced
    before = trace.get_current_span()
    with current_span(
        tracer, "outer", kind=SpanKind.CLIENT, attributes={"a": 1}, start_time=5
    ) as outer:
        assert trace.get_current_span() is outer
        with current_span(tracer, "inner") as inner:
            assert trace.get_current_span() is inner
        assert trace.get_current_span() is outer
    assert trace.get_current_span() is before
    inner_done, outer_done = spans.get_finished_spans()
    assert inner_done.parent.span_id == outer_done.context.span_id
    assert outer_done.kind == SpanKind.CLIENT
    assert outer_done.attributes["a"] == 1
    assert outer_done.start_time == 5


@pytest.mark.parametrize(
    "flags", [{}, {"record_exception": False, "set_status_on_exception": False}]
)
def test_an_exception_is_recorded_and_sets_the_status_unless_asked_not_to(traced, flags):
    tracer, spans = traced
    with pytest.raises(ValueError), current_span(tracer, "failing", **flags):
        raise ValueError("bad value")
    (span,) = spans.get_finished_spans()
    if flags:
        assert span.status.status_code == StatusCode.UNSET
        assert not span.events
    else:
        assert span.status.status_code == StatusCode.ERROR
        assert span.status.description == "ValueError: bad value"
        assert [e.name for e in span.events] == ["exception"]


def test_a_cancellation_is_no_error(traced):
    tracer, spans = traced
    with pytest.raises(asyncio.CancelledError), current_span(tracer, "cancelled"):
        raise asyncio.CancelledError
    (span,) = spans.get_finished_spans()
    assert span.status.status_code == StatusCode.UNSET
    assert not span.events
