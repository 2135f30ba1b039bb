"""Trace and span ids of a span as the hex strings logs and exemplars carry.

Apart from ``tracing`` (the SDK, exporters and the SQLAlchemy hook) so that what only logs,
like the sidecar, does not load the tracing SDK and SQLAlchemy."""

from __future__ import annotations

from opentelemetry.trace import Span, format_span_id, format_trace_id


def trace_id_of(span: Span) -> str | None:
    context = span.get_span_context()
    return format_trace_id(context.trace_id) if context.is_valid else None


def span_id_of(span: Span) -> str | None:
    context = span.get_span_context()
    return format_span_id(context.span_id) if context.is_valid else None
