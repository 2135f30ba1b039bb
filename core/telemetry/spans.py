"""``current_span``: a span made current for a block, the cheap way.

The SDK's ``Tracer.start_as_current_span`` wraps ``start_span`` in two generator-based
context managers (its own and ``trace.use_span``); on the hot paths, at seven spans a run,
those two cost about 25,000 instructions per span, an eighth of the span itself
(docs/telemetry.md). This class does the same work in plain ``__enter__``/``__exit__``,
with the same handling of an exception: an ``Exception`` escaping the block is recorded on
the span and sets its status to error (unless asked not to); a ``BaseException`` such as a
task's cancellation is not an error and is not recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import Token
from types import TracebackType

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.util.types import Attributes


class current_span:  # noqa: N801 - used like the function it replaces
    __slots__ = ("_record_exception", "_set_status_on_exception", "_span", "_token")

    def __init__(
        self,
        tracer: Tracer,
        name: str,
        *,
        context: otel_context.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> None:
        self._span = tracer.start_span(
            name,
            context,
            kind,
            attributes,
            links,
            start_time,
            record_exception=record_exception,
            set_status_on_exception=set_status_on_exception,
        )
        self._record_exception = record_exception
        self._set_status_on_exception = set_status_on_exception
        self._token: Token[otel_context.Context] | None = None

    def __enter__(self) -> Span:
        self._token = otel_context.attach(trace.set_span_in_context(self._span))
        return self._span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._token is not None:
            otel_context.detach(self._token)
        span = self._span
        if isinstance(exc, Exception) and span.is_recording():
            if self._record_exception:
                span.record_exception(exc)
            if self._set_status_on_exception:
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        span.end()
