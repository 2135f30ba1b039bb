"""Tracer provider for the backend.

Spans go to an OTLP exporter when the standard ``OTEL_*`` variables ask for one; otherwise
they are kept in a bounded in-memory buffer (the embedded default), readable for the
status page and for debugging. A failing exporter never raises into the request path:
the SDK's processors log and drop.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Mapping

from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from sqlalchemy.engine import Engine


class SpanBuffer(SpanProcessor):
    """Keeps the most recent finished spans; the oldest fall out first.

    A processor, not an exporter behind ``SimpleSpanProcessor``: that one takes a lock and
    attaches a context around every export, for an append that can neither block nor
    raise (about a tenth of each span's cost)."""

    def __init__(self, capacity: int) -> None:
        self._spans: deque[ReadableSpan] = deque(maxlen=capacity)

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is not None and span.context.trace_flags.sampled:
            self._spans.append(span)

    def recent(self) -> list[ReadableSpan]:
        return list(self._spans)

    def shutdown(self) -> None:
        self._spans.clear()


def otlp_requested(environ: Mapping[str, str]) -> bool:
    if environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "")
    return "otlp" in exporter or bool(
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def build_tracer_provider(
    *,
    buffer_capacity: int,
    exporter: SpanExporter | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[TracerProvider, SpanBuffer | None]:
    """A provider with the given exporter, OTLP when configured, else an in-memory buffer."""
    environ = os.environ if environ is None else environ
    resource = Resource.create({"service.name": environ.get("OTEL_SERVICE_NAME", "vigil")})
    provider = TracerProvider(resource=resource)
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        return provider, None
    if otlp_requested(environ):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        return provider, None
    buffer = SpanBuffer(buffer_capacity)
    provider.add_span_processor(buffer)
    return provider, buffer


def instrument_engine(engine: Engine, tracer_provider: TracerProvider) -> None:
    """Spans for every statement of this engine, on this provider only.

    ``SQLAlchemyInstrumentor().instrument(engine=...)`` is a process-wide singleton that
    also patches ``create_engine`` and instruments only the first engine it is given; the
    engine tracer it uses underneath attaches to one engine and nothing else.
    """
    tracer = tracer_provider.get_tracer("opentelemetry.instrumentation.sqlalchemy")
    # Pool usage is already in the db_* metrics; this meter discards its samples.
    usage = NoOpMeterProvider().get_meter("vigil").create_up_down_counter("db.client.connections")
    EngineTracer(tracer, engine, usage)
