"""``GET /ws``: authenticate before accepting, say ``connection_ready`` first, then read
frames (each bad one answered with an ``error`` frame) while the connection's writer sends.

An idle connection costs a task (this one, reading), a heartbeat timer and an expiry timer;
its span is the handshake's, ended once the socket is accepted (see ``_handshake``)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

from opentelemetry import propagate, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, StatusCode
from starlette.websockets import WebSocket, WebSocketDisconnect

from core.auth import AuthRefusal, Identity
from core.protocol import (
    SUBPROTOCOL,
    AckFrame,
    ClientFrame,
    CloseCode,
    ConnectionReady,
    ErrorFrame,
    FrameError,
    PongFrame,
    parse_client_frame,
    utc_now,
)
from core.ratelimit import TokenBucket
from core.services import Services
from core.telemetry.logging import get_logger
from core.ws.connection import Connection
from core.ws.handlers import FrameHandlers
from core.ws.handshake import authorize, refuse
from core.ws.heartbeat import Heartbeat

log = get_logger(__name__)

# A client that keeps sending this many frames past its limit is closed with 4429.
RATE_LIMIT_CLOSE_AFTER = 200
# After the read loop ends, how long the writer may take to send the close.
CLOSE_WAIT_S = 5.0


async def websocket_endpoint(websocket: WebSocket) -> None:
    services: Services = websocket.app.state.services
    request_id = websocket.headers.get("x-request-id") or uuid.uuid4().hex
    accepted = await _handshake(services, websocket, request_id)
    if accepted is None:
        return
    identity, span = accepted
    # The connection's log lines and statements stay in the handshake's trace.
    with trace.use_span(NonRecordingSpan(span)):
        await _serve(services, websocket, identity, request_id, span)


async def _handshake(
    services: Services, websocket: WebSocket, request_id: str
) -> tuple[Identity, SpanContext] | None:
    """Authorize and accept, in the connection's span: it continues a ``traceparent`` the
    client sent, and ends here rather than with the connection (a span open for hours would
    hold its attributes all that time). Runs started on the connection link to it. The
    identity and the span, or None when the handshake was refused."""
    parent = propagate.extract(websocket.headers)
    with services.tracer.start_as_current_span(
        "ws.handshake", context=parent, kind=SpanKind.SERVER
    ) as span:
        span.set_attribute("vigil.request_id", request_id)
        try:
            identity = await authorize(services, websocket)
        except AuthRefusal as refusal:
            span.set_attribute("http.response.status_code", refusal.status)
            span.set_status(StatusCode.ERROR, refusal.reason)
            await refuse(services, websocket, refusal, request_id)
            return None
        span.set_attribute("enduser.id", identity.user_id)
        # ``authorize`` reserved a connection slot: the connection takes it over below, or
        # a failed accept gives it back.
        try:
            await websocket.accept(subprotocol=SUBPROTOCOL)
        except BaseException:  # noqa: BLE001 - gives the reserved slot back, then re-raises
            services.hub.release(identity.user_id)
            raise
        return identity, span.get_span_context()


async def _serve(
    services: Services,
    websocket: WebSocket,
    identity: Identity,
    request_id: str,
    span: SpanContext,
) -> None:
    settings = services.settings
    metrics = services.metrics
    connection = Connection(
        websocket,
        connection_id=uuid.uuid4().hex,
        user_id=identity.user_id,
        canary=identity.canary,
        metrics=metrics,
        max_queue_bytes=settings.send_queue_bytes,
    )
    if not identity.canary:
        metrics.ws_connections.labels("accepted", "").inc()
    metrics.ws_active.inc()
    services.hub.add(connection, reserved=True)
    log.info("connection_opened", connection_id=connection.id, user_id=identity.user_id)
    connection.send_frame(
        ConnectionReady(
            connection_id=connection.id,
            user_id=identity.user_id,
            heartbeat_interval_s=settings.heartbeat_interval_s,
            server_time=utc_now(),
        )
    )
    heartbeat = Heartbeat(connection, settings.heartbeat_interval_s, metrics.heartbeat_rtt)
    handlers = FrameHandlers(
        services,
        connection,
        heartbeat,
        request_id=request_id,
        connection_span=span if span.is_valid else None,
    )
    heartbeat.start()
    # The session lasts as long as its token: at ``exp`` it is closed 4401 (the client
    # refreshes the token, reconnects and resumes).
    expiry = asyncio.get_running_loop().call_later(
        max(0.0, identity.expires_at - time.time()),
        connection.request_close,
        CloseCode.TOKEN_EXPIRED,
    )
    try:
        with connection.reading():
            await _read_frames(services, connection, handlers)
    finally:
        expiry.cancel()
        heartbeat.stop()
        services.hub.remove(connection)
        handlers.resumes.close()
        connection.request_close(connection.close_code or CloseCode.NORMAL)
        with contextlib.suppress(asyncio.CancelledError):
            await connection.wait_closed(CLOSE_WAIT_S)
        metrics.ws_active.dec()
        metrics.ws_disconnects.labels(str(connection.close_code)).inc()
        log.info("connection_closed", connection_id=connection.id, code=connection.close_code)


class _FrameBudget:
    """Per-connection rate limits. Acks and pongs, which a busy client sends once per event
    and per ping, have their own, larger budget so they never starve chats (or vice versa)."""

    CONTROL_FACTOR = 10

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self._frames = TokenBucket(rate_per_s, burst, time.monotonic)
        self._control = TokenBucket(
            rate_per_s * self.CONTROL_FACTOR, burst * self.CONTROL_FACTOR, time.monotonic
        )

    def admit(self, connection: Connection, frame: ClientFrame | None) -> None:
        bucket = self._control if isinstance(frame, AckFrame | PongFrame) else self._frames
        if bucket.allow():
            return
        if bucket.consecutive_refusals >= RATE_LIMIT_CLOSE_AFTER:
            connection.request_close(CloseCode.RATE_LIMITED)
        # Answered with the frame's ref (or resumed thread) by the reader's error path.
        raise FrameError("rate_limited", "too many frames; slow down")


async def _read_frames(services: Services, connection: Connection, handlers: FrameHandlers) -> None:
    settings = services.settings
    budget = _FrameBudget(settings.rate_limit_per_s, settings.rate_limit_burst)
    while connection.close_code is None:
        try:
            message = await connection.websocket.receive()
        except (WebSocketDisconnect, RuntimeError):
            connection.peer_closed(CloseCode.NO_CLOSE_FRAME)
            return
        if message["type"] == "websocket.disconnect":
            connection.peer_closed(message.get("code", CloseCode.NORMAL))
            return
        frame: ClientFrame | None = None
        try:
            text = message.get("text")
            if text is None:
                budget.admit(connection, None)
                raise FrameError("invalid_json", "binary frames are not accepted; send JSON text")
            try:
                frame = parse_client_frame(text, max_text_chars=settings.max_text_chars)
            except FrameError:
                budget.admit(connection, None)
                raise
            budget.admit(connection, frame)
            await handlers.handle(frame)
        except FrameError as error:
            services.metrics.frames_rejected.labels(error.code).inc()
            connection.send_frame(
                ErrorFrame.answering(frame, error.code, error.message, ref=error.ref)
            )
        except Exception:  # noqa: BLE001 - one frame's bug must not end the connection or others
            services.metrics.internal_errors.labels("frame").inc()
            log.exception("frame_handler_crashed", connection_id=connection.id)
            # Answered like any refusal, with its ref: a chat waiting for it ends now.
            connection.send_frame(
                ErrorFrame.answering(frame, "unavailable", "the server failed to handle this frame")
            )
