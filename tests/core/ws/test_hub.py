"""The hub's connection slots: a handshake reserves one before it is accepted, so
concurrent handshakes cannot all pass the quota check."""

from __future__ import annotations

from typing import cast

from starlette.websockets import WebSocket

from core.telemetry.metrics import Metrics
from core.ws.connection import Connection
from core.ws.hub import Hub


def connection(user: str) -> Connection:
    return Connection(
        cast(WebSocket, object()),
        connection_id=f"{user}-conn",
        user_id=user,
        canary=False,
        metrics=Metrics(),
        max_queue_bytes=1 << 20,
    )


def test_handshakes_in_progress_hold_slots_so_only_the_quota_is_reserved():
    hub = Hub()
    outcomes = [hub.reserve("alice", 3) for _ in range(8)]
    assert outcomes == [True] * 3 + [False] * 5
    assert hub.reserve("bob", 3)  # another user's quota is their own


def test_a_failed_handshake_gives_its_slot_back():
    hub = Hub()
    assert hub.reserve("alice", 1)
    assert not hub.reserve("alice", 1)
    hub.release("alice")
    assert hub.reserve("alice", 1)


def test_an_accepted_connection_takes_over_its_reserved_slot():
    hub = Hub()
    assert hub.reserve("alice", 2)
    conn = connection("alice")
    hub.add(conn, reserved=True)
    assert hub.count("alice") == 1 and hub.total() == 1
    assert hub.reserve("alice", 2)
    assert not hub.reserve("alice", 2)
    hub.remove(conn)
    assert hub.count("alice") == 1  # the handshake still in progress
