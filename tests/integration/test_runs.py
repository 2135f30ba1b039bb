"""Agent runs over real sockets: the five events, idempotency, cancellation, limits."""

import uuid

import pytest

from core.client import VigilClient
from tests.integration.runs import assert_well_formed_run, tool_pairs


@pytest.mark.parametrize(
    ("text", "tools"),
    [
        ("hello there", []),
        ("What is 17 * 23?", ["calculator"]),
        (
            "What is (2 + 3) * 4, and what do 1000000 input tokens cost on gpt-4o?",
            ["calculator", "token_cost"],
        ),
    ],
)
async def test_a_run_sends_the_five_events_in_order(live_server, text, tools):
    async with VigilClient.connect(live_server.ws_url, live_server.token("alice")) as client:
        result = await client.run(text)
    assert_well_formed_run(result.events)
    assert tool_pairs(result.events) == tools
    completed = result.completed["data"]
    assert completed["status"] == "completed"
    assert completed["text"]
    assert completed["usage"]["input_tokens"] > 0
    assert result.events[0]["seq"] == 1


async def test_a_tool_answer_carries_the_tool_result(live_server):
    async with VigilClient.connect(live_server.ws_url, live_server.token("alice")) as client:
        result = await client.run("What is 17 * 23?")
    assert "391" in result.completed["data"]["text"]


async def test_runs_on_one_thread_keep_counting_seq(live_server):
    async with VigilClient.connect(live_server.ws_url, live_server.token("alice")) as client:
        first = await client.run("hello")
        second = await client.run("What is 2 + 2?", thread_id=first.accepted["thread_id"])
    assert second.accepted["thread_id"] == first.accepted["thread_id"]
    assert second.events[0]["seq"] == first.events[-1]["seq"] + 1


async def test_the_same_chat_id_twice_starts_one_run(live_server):
    async with VigilClient.connect(live_server.ws_url, live_server.token("alice")) as client:
        msg_id = uuid.uuid4().hex
        first = await client.chat("What is 6 * 7?", msg_id=msg_id)
        again = await client.chat("What is 6 * 7?", msg_id=msg_id)
        assert again == first
        events = []
        while not events or events[-1]["type"] != "agent_completed":
            events.append(await client.next_event(10))
        with pytest.raises(TimeoutError):
            await client.next_event(0.5)
    assert [e["type"] for e in events].count("agent_started") == 1
    assert live_server.metric("vigil_runs_total", {"status": "completed"}) == 1


async def test_a_chat_on_another_users_thread_is_not_found(live_server):
    async with VigilClient.connect(live_server.ws_url, live_server.token("alice")) as alice:
        thread_id = (await alice.run("hello")).accepted["thread_id"]
    async with VigilClient.connect(live_server.ws_url, live_server.token("bob")) as bob:
        await bob.send({"type": "chat", "id": "b1", "thread_id": thread_id, "text": "hi"})
        error = await bob.next_frame(5)
    assert (error["type"], error["code"], error["ref"]) == ("error", "not_found", "b1")


async def test_events_reach_every_connection_of_the_user_that_follows_the_thread(live_server):
    token = live_server.token("alice")
    async with (
        VigilClient.connect(live_server.ws_url, token) as tab1,
        VigilClient.connect(live_server.ws_url, token) as tab2,
    ):
        first = await tab1.run("hello")
        thread_id = first.accepted["thread_id"]
        await tab2.send(
            {
                "type": "resume",
                "thread_id": thread_id,
                "epoch": first.events[0]["epoch"],
                "last_seq": 0,
            }
        )
        resumed = await tab2.next_frame(5)
        assert resumed == {
            "type": "resumed",
            "thread_id": thread_id,
            "recovered": True,
            "replayed": len(first.events),
            "epoch": first.events[0]["epoch"],
        }
        for _ in first.events:
            await tab2.next_event(5)
        second = await tab1.run("What is 1 + 1?", thread_id=thread_id)
        mirrored = [await tab2.next_event(5) for _ in second.events]
    assert mirrored == second.events
