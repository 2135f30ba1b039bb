"""The canary's I/O: one synthetic chat over the real protocol, through ``core.client``.

``run_canary`` connects with its own identity (a JWT carrying ``"canary": true``, so the backend
leaves it out of the user SLIs), asks a question that makes the offline agent call its
calculator tool, and feeds every event to the ``PhaseChecker``. Every way the backend can fail
ends as a ``CanaryResult``; nothing here raises for a broken backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from core.client import HandshakeRefused, VigilClient
from sidecar.canary.checker import (
    CHAT_REFUSED,
    DISCONNECTED,
    PHASES,
    PROTOCOL_ERROR,
    REFUSED,
    RUN,
    UNAVAILABLE,
    UNREACHABLE,
    CanaryResult,
    PhaseChecker,
)
from sidecar.metrics import SidecarMetrics

CANARY_MESSAGE = "What is 17 * 23?"
CANARY_USER = "vigil-canary"
DEADLINE_S = 15.0
CONNECT_TIMEOUT_S = 5.0
CLOSE_TIMEOUT_S = 2.0
TOKEN_TTL_S = 3600.0
TokenSource = Callable[[], str]


async def run_canary(
    ws_url: str,
    token: str,
    *,
    deadline_s: float = DEADLINE_S,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
    message: str = CANARY_MESSAGE,
    timer: Callable[[], float] = time.perf_counter,
    clock: Callable[[], float] = time.time,
) -> CanaryResult:
    checker = PhaseChecker(timer, deadline_s, started_at=clock())
    try:
        client = await VigilClient.open(
            ws_url, token, open_timeout=min(connect_timeout_s, deadline_s)
        )
    except HandshakeRefused as refusal:
        return checker.fail(*_refusal_blame(refusal))
    except (TimeoutError, OSError, InvalidHandshake, InvalidURI) as exc:
        return checker.fail(UNREACHABLE, "connect", _describe(exc))
    except (ConnectionClosed, ValueError, KeyError) as exc:
        return checker.fail(PROTOCOL_ERROR, "connect", f"no connection_ready: {_describe(exc)}")
    try:
        checker.connected()
        return await _converse(client, checker, message)
    finally:
        # The result is already decided; a slow or failed close changes nothing.
        with contextlib.suppress(TimeoutError, OSError, ConnectionClosed):
            await asyncio.wait_for(client.close(), CLOSE_TIMEOUT_S)


async def _converse(client: VigilClient, checker: PhaseChecker, message: str) -> CanaryResult:
    try:
        checker.chat_sent()
        try:
            accepted = await client.chat(
                message, msg_id=f"canary-{uuid.uuid4().hex}", timeout=checker.remaining()
            )
        except RuntimeError as exc:  # core.client: the reply was not chat_accepted
            return checker.fail(CHAT_REFUSED, "agent_started", str(exc))
        checker.chat_accepted(str(accepted.get("run_id")))
        while True:
            event = await client.next_event(timeout=checker.remaining())
            result = checker.feed(event)
            if result is not None:
                return result
    except TimeoutError:
        return checker.expire()
    except ConnectionClosed as exc:
        return checker.fail(DISCONNECTED, None, f"closed while waiting: {_describe(exc)}")


def _refusal_blame(refusal: HandshakeRefused) -> tuple[str, str, str]:
    detail = f"HTTP {refusal.status} {refusal.reason}"
    if refusal.status in (401, 403):
        return REFUSED, "auth", detail
    if refusal.status == 503:
        return UNAVAILABLE, "connect", detail
    return REFUSED, "connect", detail


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def minted_tokens(
    settings: Any, user_id: str = CANARY_USER, clock: Callable[[], float] = time.time
) -> TokenSource:
    """Tokens signed with the backend's key (HS*), marked canary, renewed before they expire."""
    from core.auth import issue_token

    cache: dict[str, Any] = {"token": None, "expires": 0.0}

    def token() -> str:
        if cache["token"] is None or clock() > cache["expires"] - TOKEN_TTL_S / 4:
            cache["token"] = issue_token(
                settings,
                user_id,
                ttl_s=TOKEN_TTL_S,
                extra_claims={"canary": True, "roles": ["operator"]},
            )
            cache["expires"] = clock() + TOKEN_TTL_S
        return str(cache["token"])

    return token


class CanaryLoop:
    """Runs the canary, exports each result, and keeps the last few for the status page."""

    def __init__(
        self,
        ws_url: str,
        tokens: TokenSource,
        metrics: SidecarMetrics,
        *,
        interval_s: float = 30.0,
        deadline_s: float = DEADLINE_S,
        keep: int = 20,
    ) -> None:
        self.ws_url = ws_url
        self.tokens = tokens
        self.metrics = metrics
        self.interval_s = interval_s
        self.deadline_s = deadline_s
        self.recent: deque[CanaryResult] = deque(maxlen=keep)

    async def once(self) -> CanaryResult:
        result = await run_canary(self.ws_url, self.tokens(), deadline_s=self.deadline_s)
        self.record(result)
        return result

    def record(self, result: CanaryResult) -> None:
        self.metrics.canary_runs.labels(result.outcome, result.phase).inc()
        for phase in (*PHASES, RUN):
            if phase in result.phases:
                self.metrics.canary_phase.labels(phase).observe(result.phases[phase])
        self.recent.append(result)
