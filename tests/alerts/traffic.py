"""Traffic for the live stack, failures included, through the real protocol.

``VigilClient`` (core/client.py) for well-behaved users; raw sockets for the misbehaving ones
it cannot be (it always acks and always answers pings):

- tool errors: the calculator asked to divide by zero (``tool_completed`` with status error);
- bad tokens: malformed, expired, signed with another key (401, by reason);
- a slow consumer that acks its run 2.5 s late (late acks, redeliveries meanwhile);
- a client that never acks (its events are resent, then counted undelivered);
- a client that never answers pings (closed with 4408);
- a dropped connection (the socket aborted mid-run) whose thread is resumed on a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from core.auth import issue_token
from core.client import SUBPROTOCOL, HandshakeRefused, VigilClient
from core.settings import load_settings
from tests.fixtures.servers import BackendProcess

RUN_TIMEOUT_S = 20.0
NEVER_ACKED_RUNS = 4


@dataclass
class Observed:
    """What the clients saw: the test asserts the failures really happened."""

    tool_errors: int = 0
    refusals: list[str] = field(default_factory=list)
    slow_consumer_resends: int = 0
    never_acked_events: int = 0
    silent_close_code: int | None = None
    resumed: dict[str, Any] = field(default_factory=dict)


class RawClient:
    """A socket that does only what the test tells it to."""

    def __init__(self, websocket: ClientConnection, answer_pings: bool) -> None:
        self.websocket = websocket
        self.answer_pings = answer_pings

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls, backend: BackendProcess, user: str, *, answer_pings: bool
    ) -> AsyncIterator[RawClient]:
        async with connect(
            backend.ws_url,
            subprotocols=[SUBPROTOCOL, f"bearer.{backend.token(user)}"],  # type: ignore[list-item]
            ping_interval=None,
        ) as websocket:
            ready = json.loads(await websocket.recv())
            assert ready["type"] == "connection_ready", ready
            yield cls(websocket, answer_pings)

    async def frame(self, timeout: float = RUN_TIMEOUT_S) -> dict[str, Any]:
        while True:
            # Not asyncio.wait_for: on Python 3.11 it swallows the cancellation of an outer
            # asyncio.timeout (drain's) when the frame arrives in the same loop iteration,
            # and with a ping every second drain then never ended.
            async with asyncio.timeout(timeout):
                frame: dict[str, Any] = json.loads(await self.websocket.recv())
            if frame["type"] != "ping":
                return frame
            if self.answer_pings:
                await self.websocket.send(json.dumps({"type": "pong", "ts": frame["ts"]}))

    async def chat(self, text: str) -> list[dict[str, Any]]:
        """Send a chat; its events up to its ``agent_completed`` (resends included)."""
        await self.websocket.send(
            json.dumps({"type": "chat", "id": uuid.uuid4().hex, "thread_id": None, "text": text})
        )
        frames = []
        while True:
            frame = await self.frame()
            if "seq" in frame:
                frames.append(frame)
            if frame["type"] == "agent_completed":
                return frames

    async def drain(self, seconds: float) -> list[dict[str, Any]]:
        """Read (and answer pings) for ``seconds``; the frames read."""
        frames: list[dict[str, Any]] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while True:
                    frames.append(await self.frame())
        return frames

    async def ack(self, thread_id: str, seq: int) -> None:
        await self.websocket.send(json.dumps({"type": "ack", "thread_id": thread_id, "seq": seq}))


async def well_behaved(backend: BackendProcess, seen: Observed) -> None:
    async with VigilClient.connect(backend.ws_url, backend.token("alice")) as client:
        for text in ("What is 17 * 23?", "What is 1/0?", "hello", "What is 2 + 2?", "10 / 0"):
            result = await client.run(text, timeout=RUN_TIMEOUT_S)
            seen.tool_errors += sum(
                1
                for event in result.events
                if event["type"] == "tool_completed" and event["data"]["status"] == "error"
            )


async def bad_tokens(backend: BackendProcess, seen: Observed) -> None:
    other_key = load_settings(jwt_secret="not-the-backend-key-but-as-long-as-it")
    tokens = (
        "not-a-jwt",
        backend.token("alice", exp=1),  # expired in 1970
        issue_token(other_key, "alice"),
    )
    for token in tokens:
        try:
            await VigilClient.open(backend.ws_url, token)
        except HandshakeRefused as refused:
            seen.refusals.append(refused.reason)


async def slow_consumer(backend: BackendProcess, seen: Observed) -> None:
    async with RawClient.open(backend, "slow", answer_pings=True) as client:
        frames = await client.chat("What is 6 * 7?")
        frames += [frame for frame in await client.drain(2.5) if "seq" in frame]
        seqs = [frame["seq"] for frame in frames]
        seen.slow_consumer_resends = len(seqs) - len(set(seqs))
        await client.ack(frames[0]["thread_id"], max(seqs))
        await client.drain(0.5)


async def never_acks(backend: BackendProcess, seen: Observed) -> None:
    async with RawClient.open(backend, "never-acks", answer_pings=True) as client:
        for index in range(NEVER_ACKED_RUNS):
            frames = await client.chat(f"What is {index} + 1?")
            seen.never_acked_events += len({frame["seq"] for frame in frames})
            await client.drain(1.5)
        await client.drain(5.0)  # until the last run's events are given up


async def silent(backend: BackendProcess, seen: Observed) -> None:
    async with RawClient.open(backend, "silent", answer_pings=False) as client:
        with contextlib.suppress(ConnectionClosed):
            await client.drain(10.0)
        seen.silent_close_code = client.websocket.close_code


async def dropped_and_resumed(backend: BackendProcess, seen: Observed) -> None:
    first = await VigilClient.open(backend.ws_url, backend.token("dropped"))
    accepted = await first.chat("What is 12 * 12?")
    first.websocket.transport.abort()  # no close frame: the server sees the socket die
    with contextlib.suppress(ConnectionClosed, asyncio.CancelledError):
        await first.close()
    async with VigilClient.connect(backend.ws_url, backend.token("dropped")) as second:
        await second.send(
            {
                "type": "resume",
                "thread_id": accepted["thread_id"],
                "epoch": accepted["epoch"],
                "last_seq": 0,
            }
        )
        while (frame := await second.next_frame(RUN_TIMEOUT_S))["type"] != "resumed":
            pass
        seen.resumed = frame
        await asyncio.sleep(0.5)  # its acks of the replayed events reach the server


async def drive(backend: BackendProcess) -> Observed:
    seen = Observed()
    await asyncio.gather(
        well_behaved(backend, seen),
        bad_tokens(backend, seen),
        slow_consumer(backend, seen),
        never_acks(backend, seen),
        silent(backend, seen),
        dropped_and_resumed(backend, seen),
    )
    return seen
