"""Opening one authenticated v1 socket: the token in the subprotocol list (as browsers do)
or in the ``Authorization`` header, then ``connection_ready`` before anything else."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from core.protocol import SUBPROTOCOL

MAX_FRAME_BYTES = 2**22


class HandshakeRefused(Exception):
    """The server answered the handshake with an HTTP refusal."""

    def __init__(self, status: int, reason: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(f"handshake refused: HTTP {status} {reason}")
        self.status = status
        self.reason = reason
        self.body = body or {}


@dataclass(frozen=True)
class Endpoint:
    ws_url: str
    token: str
    open_timeout: float
    via_header: bool

    @property
    def http_url(self) -> str:
        """The REST base of the same server (``ws://host/ws`` -> ``http://host``)."""
        base = self.ws_url.replace("wss://", "https://").replace("ws://", "http://")
        return base.removesuffix("/ws")


async def handshake(endpoint: Endpoint, token: str) -> tuple[ClientConnection, dict[str, Any]]:
    """Connect and read ``connection_ready``; raise ``HandshakeRefused`` on an HTTP refusal."""
    if endpoint.via_header:
        options: dict[str, Any] = {
            "subprotocols": [SUBPROTOCOL],
            "additional_headers": {"Authorization": f"Bearer {token}"},
        }
    else:
        options = {"subprotocols": [SUBPROTOCOL, f"bearer.{token}"]}
    try:
        websocket = await connect(
            endpoint.ws_url,
            open_timeout=endpoint.open_timeout,
            max_size=MAX_FRAME_BYTES,
            ping_interval=None,
            **options,
        )
    except InvalidStatus as exc:
        raise _refusal(exc) from exc
    # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow the cancellation
    # of a caller's own timeout when the frame arrives at the same moment.
    async with asyncio.timeout(endpoint.open_timeout):
        ready = json.loads(await websocket.recv())
    if ready.get("type") != "connection_ready":
        await websocket.close()
        raise ConnectionError(f"expected connection_ready, got {ready.get('type')!r}")
    return websocket, ready


def _refusal(exc: InvalidStatus) -> HandshakeRefused:
    status = exc.response.status_code
    try:
        body = json.loads(exc.response.body or b"{}")
    except json.JSONDecodeError:
        body = {}
    return HandshakeRefused(status, str(body.get("reason", "unknown")), body)
