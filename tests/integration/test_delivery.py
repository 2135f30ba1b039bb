"""Acks and redelivery over real sockets: what an unconfirmed event costs, what a bad ack
gets, and the tool-visibility counters."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

from websockets.asyncio.client import ClientConnection, connect

from core.client import VigilClient
from tests.integration.runs import eventually

EVENT_TYPES = {"agent_started", "agent_thinking", "tool_executing", "tool_completed"} | {
    "agent_completed",
    "agent_error",
}


class SilentReader:
    """A raw v1 connection that reads every frame and never acks (nor pongs)."""

    def __init__(self, websocket: ClientConnection) -> None:
        self.websocket = websocket
        self.frames: list[dict] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for raw in self.websocket:
                self.frames.append(json.loads(raw))

    @property
    def events(self) -> list[dict]:
        return [f for f in self.frames if f["type"] in EVENT_TYPES]

    async def send(self, frame: dict) -> None:
        await self.websocket.send(json.dumps(frame))

    async def chat(self, text: str) -> dict:
        await self.send({"type": "chat", "id": "c1", "thread_id": None, "text": text})
        await eventually(lambda: any(f["type"] == "chat_accepted" for f in self.frames))
        return next(f for f in self.frames if f["type"] == "chat_accepted")

    async def wait_for_run(self, run_id: str) -> list[dict]:
        def completed() -> bool:
            return any(
                e["type"] == "agent_completed" and e["run_id"] == run_id for e in self.events
            )

        await eventually(completed)
        return self.first_copies()

    def first_copies(self) -> list[dict]:
        first: dict[int, dict] = {}
        for event in self.events:
            first.setdefault(event["seq"], event)
        return [first[seq] for seq in sorted(first)]

    def errors(self) -> list[dict]:
        return [f for f in self.frames if f["type"] == "error"]


@contextlib.asynccontextmanager
async def silent_reader(server, user: str) -> AsyncIterator[SilentReader]:
    token = server.token(user)
    async with connect(
        server.ws_url, subprotocols=["vigil.v1", f"bearer.{token}"], ping_interval=None
    ) as websocket:
        reader = SilentReader(websocket)
        await eventually(lambda: bool(reader.frames))  # connection_ready
        yield reader


def total(server, name: str, label: str, values, **fixed: str) -> float:
    return sum(server.metric(name, {label: value, **fixed}) for value in values)


async def test_an_unacked_event_is_sent_again_then_counted_undelivered_and_logged(start_server):
    server = await start_server(ack_timeout_s=0.1, ack_max_redeliveries=2, ack_timeout_backoff=1)
    async with silent_reader(server, "alice") as client:
        accepted = await client.chat("What is 17 * 23?")
        events = await client.wait_for_run(accepted["run_id"])
        count = len(events)
        undelivered = "vigil_events_undelivered_total"
        types = {e["type"] for e in events}
        await eventually(
            lambda: total(server, undelivered, "type", types, reason="ack_timeout") == count
        )
        copies = {seq: [e["seq"] for e in client.events].count(seq) for seq in range(1, count + 1)}
    assert copies == dict.fromkeys(range(1, count + 1), 3)  # the first send and two more
    assert total(server, "vigil_events_redelivered_total", "type", types) == 2 * count
    assert total(server, "vigil_events_acked_total", "type", types) == 0
    assert server.services.deliveries.last_pending_seq(accepted["thread_id"]) == 0
    logged = [json.loads(line) for line in server.logs.getvalue().splitlines() if line]
    given_up = [line for line in logged if line.get("event") == "event_undelivered"]
    assert {(line["run_id"], line["thread_id"]) for line in given_up} == {
        (accepted["run_id"], accepted["thread_id"])
    }
    assert sorted(line["seq"] for line in given_up) == list(range(1, count + 1))


async def test_a_client_that_acks_leaves_nothing_waiting_to_be_sent_again(live_server):
    async with VigilClient.connect(live_server.ws_url, live_server.token("alice")) as client:
        run = await client.run("What is 2 + 3?")
        await eventually(lambda: live_server.metric("vigil_events_pending_ack") == 0)
    types = set(run.types)
    assert total(live_server, "vigil_events_acked_total", "type", types) == len(run.events)
    assert total(live_server, "vigil_events_emitted_total", "type", types) == len(run.events)


async def test_an_ack_for_a_seq_never_sent_is_an_invalid_field_and_changes_nothing(live_server):
    async with silent_reader(live_server, "alice") as client:
        accepted = await client.chat("hello")
        events = await client.wait_for_run(accepted["run_id"])
        pending = live_server.metric("vigil_events_pending_ack")
        await client.send(
            {"type": "ack", "thread_id": accepted["thread_id"], "seq": events[-1]["seq"] + 1}
        )
        await eventually(lambda: bool(client.errors()))
        [error] = client.errors()
        assert (error["code"], error["ref"]) == ("invalid_field", None)
        assert live_server.metric("vigil_events_pending_ack") == pending == len(events)
        # The real ack still works afterwards.
        await client.send({"type": "ack", "thread_id": accepted["thread_id"], "seq": 2})
        await eventually(lambda: live_server.metric("vigil_events_pending_ack") == pending - 2)
    acked = total(live_server, "vigil_events_acked_total", "type", {e["type"] for e in events})
    assert acked == 2


async def test_an_ack_for_another_users_thread_is_not_found_and_changes_nothing(live_server):
    async with silent_reader(live_server, "alice") as alice:
        accepted = await alice.chat("hello")
        events = await alice.wait_for_run(accepted["run_id"])
        async with silent_reader(live_server, "mallory") as mallory:
            await mallory.send({"type": "ack", "thread_id": accepted["thread_id"], "seq": 1})
            await eventually(lambda: bool(mallory.errors()))
            assert [e["code"] for e in mallory.errors()] == ["not_found"]
        assert live_server.metric("vigil_events_pending_ack") == len(events)
        assert live_server.services.deliveries.last_pending_seq(accepted["thread_id"]) == len(
            events
        )
    types = {e["type"] for e in events}
    assert total(live_server, "vigil_events_acked_total", "type", types) == 0


async def test_tool_events_acked_are_counted_per_tool_beside_those_emitted(live_server):
    async with VigilClient.connect(live_server.ws_url, live_server.token("alice")) as client:
        await client.run("What is 17 * 23, and what do 1000 input tokens cost on gpt-4o?")

        def acked(tool: str, kind: str) -> float:
            return live_server.metric("vigil_tool_events_acked_total", {"tool": tool, "type": kind})

        await eventually(lambda: acked("token_cost", "tool_completed") == 1)
    for tool in ("calculator", "token_cost"):
        for kind in ("tool_executing", "tool_completed"):
            labels = {"tool": tool, "type": kind}
            assert live_server.metric("vigil_tool_events_emitted_total", labels) == 1
            assert acked(tool, kind) == 1


async def test_canary_events_are_resent_but_stay_out_of_the_user_counters(start_server):
    server = await start_server(ack_timeout_s=0.1, ack_max_redeliveries=1, ack_timeout_backoff=1)
    token = server.token("canary", canary=True)
    async with connect(
        server.ws_url, subprotocols=["vigil.v1", f"bearer.{token}"], ping_interval=None
    ) as websocket:
        canary = SilentReader(websocket)
        await eventually(lambda: bool(canary.frames))
        accepted = await canary.chat("What is 1 + 1?")
        events = await canary.wait_for_run(accepted["run_id"])
        await eventually(lambda: len(canary.events) == 2 * len(events))  # each sent again once
        await eventually(lambda: server.metric("vigil_events_pending_ack") == 0)
    types = {e["type"] for e in events}
    for name in ("vigil_events_emitted_total", "vigil_events_redelivered_total"):
        assert total(server, name, "type", types) == 0
    assert total(server, "vigil_events_undelivered_total", "type", types, reason="ack_timeout") == 0
    assert (
        server.metric(
            "vigil_tool_events_emitted_total", {"tool": "calculator", "type": "tool_completed"}
        )
        == 0
    )
