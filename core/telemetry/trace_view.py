"""The recent runs' traces, from the spans kept in memory, as plain data for the status page.

Each run is the root of a trace of its own (docs/telemetry.md); its phases, model and tool
calls are its spans. A run is shown once its root span has ended, with the spans of its trace
that are still in the bounded buffer, in the order they started, each as an offset from the
run's start: enough to see which phase a slow or failed run spent its time in. The run
starts when its chat frame arrived; ``admitted_ms`` is when the chat's admission committed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

RUN_SPAN_PREFIX = "invoke_agent "
# The run span's event at the commit of its chat's admission.
ADMITTED_EVENT = "admitted"


def _ms(nanoseconds: int) -> float:
    return round(nanoseconds / 1e6, 3)


def _status(span: ReadableSpan) -> dict[str, Any]:
    if span.status.status_code is StatusCode.ERROR:
        return {"status": "error", "error": span.status.description}
    return {"status": "ok", "error": None}


def recent_runs(spans: Iterable[ReadableSpan], limit: int) -> list[dict[str, Any]]:
    """The last ``limit`` runs whose root span is in ``spans``, newest first."""
    by_trace: dict[int, list[ReadableSpan]] = {}
    roots: list[tuple[int, int, ReadableSpan]] = []  # (start, trace id, span)
    for span in spans:
        if span.context is None or span.start_time is None or span.end_time is None:
            continue
        by_trace.setdefault(span.context.trace_id, []).append(span)
        if span.parent is None and span.name.startswith(RUN_SPAN_PREFIX):
            roots.append((span.start_time, span.context.trace_id, span))
    roots.sort(key=lambda root: root[0], reverse=True)
    return [_run(root, by_trace[trace_id]) for _, trace_id, root in roots[:limit]]


def _run(root: ReadableSpan, trace: list[ReadableSpan]) -> dict[str, Any]:
    assert root.start_time is not None and root.end_time is not None and root.context is not None
    attributes = root.attributes or {}
    children = sorted((s for s in trace if s is not root), key=lambda s: s.start_time or 0)
    return {
        "trace_id": format(root.context.trace_id, "032x"),
        "run_id": attributes.get("vigil.run_id"),
        "started_at": root.start_time / 1e9,
        "duration_ms": _ms(root.end_time - root.start_time),
        "admitted_ms": next(
            (_ms(e.timestamp - root.start_time) for e in root.events if e.name == ADMITTED_EVENT),
            None,
        ),
        **_status(root),
        "spans": [
            {
                "name": span.name,
                "offset_ms": _ms((span.start_time or 0) - root.start_time),
                "duration_ms": _ms((span.end_time or 0) - (span.start_time or 0)),
                **_status(span),
            }
            for span in children
        ],
    }
