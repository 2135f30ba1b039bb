"""Everything decided before a socket is accepted: readiness, token, user, quota.

A refusal is an HTTP response with the documented status and reason (never an
accepted-then-closed socket), counted by reason and logged without the token."""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.websockets import WebSocket

from core.auth import AuthRefusal, Identity, forbidden, not_ready, token_from_handshake
from core.db.errors import DatabaseError
from core.services import Services
from core.telemetry.logging import get_logger

log = get_logger(__name__)


async def authorize(services: Services, websocket: WebSocket) -> Identity:
    """The caller's identity, with one of its connection slots reserved in the hub (the
    caller hands it to the connection or releases it); an ``AuthRefusal`` otherwise."""
    if not services.lifecycle.accepting:
        raise not_ready()
    token = token_from_handshake(
        websocket.scope.get("subprotocols", []), websocket.headers, websocket.query_params
    )
    identity = services.authenticator.authenticate(token)
    try:
        enabled = await services.repository.ensure_user(identity.user_id)
    except DatabaseError as exc:
        raise not_ready() from exc
    if not enabled:
        raise forbidden("user_disabled")
    # The last check: from here the caller holds a slot, accepts or releases it.
    if not services.hub.reserve(identity.user_id, services.settings.max_connections_per_user):
        raise forbidden("connection_quota")
    return identity


async def refuse(
    services: Services, websocket: WebSocket, refusal: AuthRefusal, request_id: str
) -> None:
    services.metrics.auth_failures.labels(refusal.reason).inc()
    services.metrics.ws_connections.labels("rejected", refusal.reason).inc()
    client = websocket.client.host if websocket.client else None
    log.info(
        "handshake_refused",
        request_id=request_id,
        status=refusal.status,
        reason=refusal.reason,
        client=client,
    )
    response = JSONResponse(refusal.body(), status_code=refusal.status)
    response.headers["x-request-id"] = request_id
    await websocket.send_denial_response(response)
