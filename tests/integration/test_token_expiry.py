"""A session lasts as long as its token: at ``exp`` the server closes it with 4401."""

from __future__ import annotations

import contextlib
import json

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from core.auth import issue_token


async def test_a_session_whose_token_expires_is_closed_with_4401(live_server):
    token = issue_token(live_server.settings, "alice", ttl_s=2)
    async with connect(
        live_server.ws_url, subprotocols=["vigil.v1", f"bearer.{token}"], ping_interval=None
    ) as websocket:
        ready = json.loads(await websocket.recv())
        assert ready["type"] == "connection_ready"
        with contextlib.suppress(ConnectionClosed):
            async for _ in websocket:  # until the server closes
                pass
        assert websocket.close_code == 4401
    assert live_server.metric("vigil_ws_disconnects_total", {"code": "4401"}) == 1


async def test_a_session_with_a_long_lived_token_stays_open_meanwhile(live_server):
    token = issue_token(live_server.settings, "alice", ttl_s=3600)
    async with connect(
        live_server.ws_url, subprotocols=["vigil.v1", f"bearer.{token}"], ping_interval=None
    ) as websocket:
        await websocket.recv()
        await websocket.send(
            json.dumps({"type": "chat", "id": "m1", "thread_id": None, "text": "hi"})
        )
        accepted = json.loads(await websocket.recv())
        assert accepted["type"] == "chat_accepted"
        assert websocket.close_code is None
