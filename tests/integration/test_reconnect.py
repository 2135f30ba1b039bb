"""The Python client's close-code table over real sockets: the server closes a connection
with each code and the client stops, comes back at once, or comes back after a jittered
delay, then resumes."""

from __future__ import annotations

import random

import pytest

from core.client import ConnectionClosed, Reconnect, VigilClient
from core.delivery.reconnect import Backoff
from tests.integration.runs import eventually

BACKOFF = Backoff(base_s=0.5, cap_s=4.0, max_attempts=5)


class NoWait:
    """The injected sleep: records the delays the client chose instead of waiting them."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def close_from_server(server, user: str, code: int) -> None:
    connections = [c for c in server.services.hub.all() if c.user_id == user]
    assert len(connections) == 1
    connections[0].request_close(code)


@pytest.mark.parametrize("code", [1000, 4403, 1009])
async def test_a_close_that_reconnecting_cannot_fix_ends_the_client(live_server, code):
    sleep = NoWait()
    policy = Reconnect(backoff=BACKOFF, rng=random.Random(1), sleep=sleep)
    async with VigilClient.connect(
        live_server.ws_url, live_server.token("alice"), reconnect=policy
    ) as client:
        await client.run("hello")
        close_from_server(live_server, "alice", code)
        with pytest.raises(ConnectionClosed) as closed:
            await client.next_event(10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == code
    assert client.reconnects == 0 and sleep.delays == []


async def test_a_restarting_server_is_reconnected_to_at_once_and_the_thread_resumed(live_server):
    sleep = NoWait()
    policy = Reconnect(backoff=BACKOFF, rng=random.Random(1), sleep=sleep)
    async with VigilClient.connect(
        live_server.ws_url, live_server.token("alice"), reconnect=policy
    ) as client:
        first = await client.run("hello")
        close_from_server(live_server, "alice", 1012)
        await eventually(lambda: len(client.resumed) == 1)
        second = await client.run("What is 3 * 3?", thread_id=first.accepted["thread_id"])
    assert sleep.delays == []
    assert client.reconnects == 1
    assert client.resumed[0]["recovered"] is True
    assert second.events[0]["seq"] == first.events[-1]["seq"] + 1


@pytest.mark.parametrize("code", [1001, 1011, 4408, 4409, 4429])
async def test_other_closes_are_reconnected_after_a_jittered_delay(live_server, code):
    sleep = NoWait()
    policy = Reconnect(backoff=BACKOFF, rng=random.Random(code), sleep=sleep)
    async with VigilClient.connect(
        live_server.ws_url, live_server.token("alice"), reconnect=policy
    ) as client:
        await client.run("hello")
        close_from_server(live_server, "alice", code)
        await eventually(lambda: len(client.resumed) == 1)
    assert len(sleep.delays) == 1
    assert 0 <= sleep.delays[0] <= BACKOFF.ceiling(0)
    assert client.resumed[0]["recovered"] is True


async def test_a_client_refused_on_reconnect_keeps_backing_off_then_gives_up(live_server):
    """While the server refuses new handshakes (draining: 503), each attempt waits a
    jittered delay below a doubling ceiling; after the budget the client ends."""
    sleep = NoWait()
    policy = Reconnect(backoff=BACKOFF, rng=random.Random(5), sleep=sleep)
    async with VigilClient.connect(
        live_server.ws_url, live_server.token("alice"), reconnect=policy
    ) as client:
        await client.run("hello")
        live_server.services.lifecycle.draining = True
        close_from_server(live_server, "alice", 1001)
        with pytest.raises(ConnectionClosed):
            await client.next_event(10)
    assert len(sleep.delays) == BACKOFF.max_attempts
    assert all(0 <= delay <= BACKOFF.ceiling(attempt) for attempt, delay in enumerate(sleep.delays))
    assert client.reconnects == 0


async def test_an_expired_session_comes_back_at_once_with_a_fresh_token(live_server):
    sleep = NoWait()
    minted: list[str] = []

    def fresh_token() -> str:
        minted.append(live_server.token("alice"))
        return minted[-1]

    policy = Reconnect(backoff=BACKOFF, rng=random.Random(2), sleep=sleep, token=fresh_token)
    async with VigilClient.connect(
        live_server.ws_url, live_server.token("alice"), reconnect=policy
    ) as client:
        await client.run("hello")
        close_from_server(live_server, "alice", 4401)
        await eventually(lambda: len(client.resumed) == 1)
    assert len(minted) == 1 and sleep.delays == []
    assert client.resumed[0]["recovered"] is True


async def test_an_expired_session_without_a_token_source_ends_the_client(live_server):
    policy = Reconnect(backoff=BACKOFF, rng=random.Random(2), sleep=NoWait())
    async with VigilClient.connect(
        live_server.ws_url, live_server.token("alice"), reconnect=policy
    ) as client:
        await client.run("hello")
        close_from_server(live_server, "alice", 4401)
        with pytest.raises(ConnectionClosed):
            await client.next_event(10)
    assert client.reconnects == 0


async def test_a_chat_sent_while_the_connection_is_down_starts_its_run_once(live_server):
    policy = Reconnect(backoff=BACKOFF, rng=random.Random(4), sleep=NoWait())
    async with VigilClient.connect(
        live_server.ws_url, live_server.token("alice"), reconnect=policy
    ) as client:
        client.websocket.transport.abort()  # the chat below goes out on a dead socket
        result = await client.run("What is 5 * 5?")
    assert client.reconnects == 1
    assert result.completed["data"]["status"] == "completed"
    assert live_server.metric("vigil_runs_total", {"status": "completed"}) == 1
