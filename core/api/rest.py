"""REST endpoints. The threads API serves only the caller's own threads: another user's
thread is a 404, exactly like one that does not exist."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from core.auth import OPERATOR_ROLE, Identity, forbidden, issue_token, token_from_headers
from core.db.errors import DatabaseError
from core.drain import stop_accepting
from core.services import Services
from core.telemetry.logging import get_logger
from core.telemetry.trace_view import recent_runs

router = APIRouter()
log = get_logger(__name__)
READINESS_DB_TIMEOUT_S = 2.0
MAX_SEQ = 2**63 - 1
MAX_TRACES = 200


class ErrorBody(BaseModel):
    """Every refusal the API answers: ``{"error": ..., "reason": ...}`` (PROTOCOL.md)."""

    error: str
    reason: str


_ERROR_MEANING = {
    401: "Missing or invalid bearer token (reason: the refusal code)",
    403: "Authenticated but not allowed",
    404: "No such resource for this caller",
    503: "A dependency (the database) is unavailable; retry",
}


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The documented error responses of an operation, for the OpenAPI document."""
    return {s: {"model": ErrorBody, "description": _ERROR_MEANING[s]} for s in statuses}


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(services_of)]


def caller(request: Request, services: ServicesDep) -> Identity:
    """The authenticated user of a REST request (refusals are handled like the socket's)."""
    return services.authenticator.authenticate(token_from_headers(request.headers))


Caller = Annotated[Identity, Depends(caller)]


@router.get(
    "/api/threads", summary="The caller's threads, newest first", responses=_errors(401, 503)
)
async def list_threads(identity: Caller, services: ServicesDep) -> dict[str, Any]:
    threads = await services.repository.list_threads(identity.user_id)
    return {
        "threads": [
            {
                "thread_id": t.id,
                "title": t.title,
                "epoch": t.epoch,
                "last_seq": t.last_seq,
                "created_at": t.created_at.isoformat(),
                "updated_at": t.updated_at.isoformat(),
            }
            for t in threads
        ]
    }


@router.get(
    "/api/threads/{thread_id}/events",
    summary="A thread's stored events, in seq order",
    responses=_errors(401, 404, 503),
)
async def list_events(
    thread_id: str,
    identity: Caller,
    services: ServicesDep,
    # Bounded by the largest seq a database column holds (a bigger one was a 500).
    after_seq: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    events = await services.repository.list_events(identity.user_id, thread_id, after_seq, limit)
    if events is None:
        raise HTTPException(status_code=404, detail={"error": "not_found", "reason": "no_thread"})
    return {
        "thread_id": thread_id,
        "events": [event.payload for event in events],
        "next_after_seq": events[-1].seq if events else after_seq,
    }


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness, with the state of each dependency",
    responses={503: {"description": "Not ready: the same body, with ready false"}},
)
async def readyz(services: ServicesDep) -> JSONResponse:
    lifecycle = services.lifecycle
    checks: dict[str, dict[str, Any]] = {
        "lifecycle": {
            "ok": lifecycle.accepting,
            "state": "draining"
            if lifecycle.draining
            else "serving"
            if lifecycle.started
            else "starting",
        },
        "database": await _database_check(services),
        "event_log": await services.replica.event_log.check(),
        "provider": {
            "ok": True,  # An open circuit degrades runs but is no reason to move traffic.
            "name": services.provider.name,
            "circuit": services.circuit.state,
        },
    }
    ready = all(check["ok"] for check in checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


async def _database_check(services: Services) -> dict[str, Any]:
    try:
        async with asyncio.timeout(READINESS_DB_TIMEOUT_S):
            await services.database.ping()
    except DatabaseError as exc:
        return {"ok": False, "category": exc.category}
    except TimeoutError:
        return {"ok": False, "category": "timeout"}
    return {"ok": True, "dialect": services.database.dialect}


@router.get("/metrics", summary="Prometheus / OpenMetrics exposition", include_in_schema=False)
async def metrics(request: Request, services: ServicesDep) -> Response:
    body, content_type = services.metrics.exposition(request.headers.get("accept", ""))
    return Response(body, media_type=content_type)


class DrainRequest(BaseModel):
    reason: str = Field(default="unspecified", max_length=200)


@router.post(
    "/admin/drain",
    status_code=202,
    summary="Turn unready and move connections elsewhere (operators only)",
    responses={
        **_errors(401, 403),
        400: {"description": "The body is not JSON (not even text): fix the client"},
    },
)
async def drain(request: DrainRequest, identity: Caller, services: ServicesDep) -> dict[str, Any]:
    if OPERATOR_ROLE not in identity.roles:
        raise forbidden("operator_role_required")
    log.warning("drain_requested", by=identity.user_id, reason=request.reason)
    stop_accepting(services)
    return {"draining": True, "reason": request.reason}


@router.get(
    "/admin/traces",
    summary="The recent runs' traces kept in memory (operators only)",
    responses=_errors(401, 403),
)
async def traces(
    identity: Caller,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=MAX_TRACES)] = 20,
) -> dict[str, Any]:
    """The last runs' traces from the in-memory buffer (the embedded default), for the
    sidecar's status page; ``kept`` is false where spans go to an exporter instead (OTLP),
    whose backend shows them. Operators only: a trace names its user."""
    if OPERATOR_ROLE not in identity.roles:
        raise forbidden("operator_role_required")
    if services.span_buffer is None:
        return {"kept": False, "runs": []}
    return {"kept": True, "runs": recent_runs(services.span_buffer.recent(), limit)}


@router.get(
    "/api/dev/token",
    summary="A short-lived token for the chat page (dev mode only)",
    responses=_errors(404),
)
async def dev_token(
    services: ServicesDep, user: Annotated[str, Query(min_length=1, max_length=64)] = "guest"
) -> dict[str, str]:
    if services.settings.mode != "dev":
        raise HTTPException(status_code=404, detail={"error": "not_found", "reason": "dev_only"})
    return {"token": issue_token(services.settings, user, ttl_s=3600), "user_id": user}
