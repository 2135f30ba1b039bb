"""Resume over real sockets: connections cut at random points, and the documented answer
to every bad resume."""

from __future__ import annotations

import asyncio
import random

import httpx

from core.client import Reconnect, VigilClient
from core.delivery.reconnect import Backoff
from tests.integration.runs import assert_well_formed_run, eventually

RUNS = 100
QUESTIONS = ["hello", "What is 17 * 23?", "What is (2 + 3) * 4?"]


class NoWait:
    """The injected sleep: records the jittered delays instead of waiting them out."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


async def stored_events(server, user: str, thread_id: str) -> list[dict]:
    headers = {"Authorization": f"Bearer {server.token(user)}"}
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as http:
        response = await http.get(f"/api/threads/{thread_id}/events", params={"limit": 1000})
    response.raise_for_status()
    return response.json()["events"]


async def test_runs_cut_off_at_random_points_reach_the_application_exactly_once_in_order(
    live_server,
):
    rng = random.Random(20261126)
    sleep = NoWait()
    backoff = Backoff(base_s=0.05, cap_s=1.0)
    policy = Reconnect(backoff=backoff, rng=random.Random(1), sleep=sleep)
    seen: list[dict] = []
    thread_id = None
    cuts = twice = 0
    async with VigilClient.connect(
        live_server.ws_url, live_server.token("alice"), reconnect=policy
    ) as client:
        for _ in range(RUNS):
            accepted = await client.chat(rng.choice(QUESTIONS), thread_id=thread_id)
            thread_id = accepted["thread_id"]
            cut_after = rng.randrange(0, 7)  # events of this run received before the cut
            run: list[dict] = []
            while not run or run[-1]["type"] != "agent_completed":
                if len(run) == cut_after:
                    client.websocket.transport.abort()  # no close frame: as if the network died
                    cuts += 1
                    if rng.random() < 0.25:  # and again, while the resume is under way
                        await eventually(lambda at=cuts: client.reconnects == at)
                        client.websocket.transport.abort()
                        cuts, twice = cuts + 1, twice + 1
                event = await client.next_event(10)
                seen.append(event)
                if event["run_id"] == accepted["run_id"]:
                    run.append(event)
            assert_well_formed_run(run)
        stored = await stored_events(live_server, "alice", thread_id)

    assert [e["seq"] for e in seen] == list(range(1, len(stored) + 1))
    assert [e["event_id"] for e in seen] == [e["event_id"] for e in stored]
    assert cuts >= RUNS / 2 and twice > 0
    assert client.reconnects == cuts
    # A resume cut off before its answer is not answered; every answer recovered.
    assert cuts - twice <= len(client.resumed) <= cuts
    assert all(frame["recovered"] for frame in client.resumed)
    assert client.backfilled == 0
    assert all(0 <= d <= backoff.ceiling(0) for d in sleep.delays)
    assert live_server.metric("vigil_resumes_total", {"recovered": "false"}) == 0


async def test_a_resume_with_another_epoch_does_not_recover_and_the_client_backfills(
    live_server,
):
    async with VigilClient.connect(live_server.ws_url, live_server.token("alice")) as first:
        run = await first.run("What is 6 * 7?")
    thread_id = run.accepted["thread_id"]
    async with VigilClient.connect(live_server.ws_url, live_server.token("alice")) as client:
        await client.send(
            {"type": "resume", "thread_id": thread_id, "epoch": "not-the-epoch", "last_seq": 0}
        )
        resumed = await client.next_frame(5)
    assert resumed == {
        "type": "resumed",
        "thread_id": thread_id,
        "recovered": False,
        "replayed": 0,
        "epoch": run.events[0]["epoch"],
    }
    assert live_server.metric("vigil_resumes_total", {"recovered": "false"}) == 1


async def test_a_resume_past_the_end_of_another_epoch_is_answered_not_recovered(live_server):
    async with VigilClient.connect(live_server.ws_url, live_server.token("alice")) as client:
        run = await client.run("hello")
        last = run.events[-1]
        # The client's old log went further than the thread's new one: not an invalid seq.
        await client.send(
            {
                "type": "resume",
                "thread_id": last["thread_id"],
                "epoch": "an-older-epoch",
                "last_seq": last["seq"] + 50,
            }
        )
        resumed = await client.next_frame(5)
    assert resumed["type"] == "resumed", resumed
    assert (resumed["recovered"], resumed["replayed"]) == (False, 0)
    assert resumed["epoch"] == last["epoch"]


async def test_a_reconnecting_client_backfills_over_rest_when_its_resume_cannot_recover(
    live_server,
):
    policy = Reconnect(sleep=NoWait(), rng=random.Random(3))
    async with VigilClient.connect(
        live_server.ws_url, live_server.token("alice"), reconnect=policy
    ) as client:
        first = await client.run("hello")
        thread_id = first.accepted["thread_id"]
        # As if the thread's log had been lost while the client was away: its epoch is stale.
        client.inbound.threads[thread_id].epoch = "lost-epoch"
        client.inbound.threads[thread_id].delivered = 0
        client.websocket.transport.abort()
        replayed = [await client.next_event(10) for _ in first.events]
        await eventually(lambda: len(client.resumed) == 1)
    assert client.resumed[0]["recovered"] is False
    assert client.backfilled == len(first.events)
    assert [e["event_id"] for e in replayed] == [e["event_id"] for e in first.events]


async def test_a_resume_from_a_seq_the_thread_never_reached_is_an_invalid_field(live_server):
    async with VigilClient.connect(live_server.ws_url, live_server.token("alice")) as client:
        run = await client.run("hello")
        last = run.events[-1]
        await client.send(
            {
                "type": "resume",
                "thread_id": last["thread_id"],
                "epoch": last["epoch"],
                "last_seq": last["seq"] + 1,
            }
        )
        error = await client.next_frame(5)
    assert error["type"] == "error" and error["code"] == "invalid_field"
    assert "beyond" in error["message"]
    # The refusal names the resumed thread: the client tells it from its acks' refusals.
    assert error["thread_id"] == last["thread_id"]


async def test_a_resume_of_another_users_thread_is_not_found_and_replays_nothing(live_server):
    async with VigilClient.connect(live_server.ws_url, live_server.token("alice")) as alice:
        run = await alice.run("What is 2 + 2?")
    first = run.events[0]
    async with VigilClient.connect(live_server.ws_url, live_server.token("mallory")) as mallory:
        await mallory.send(
            {
                "type": "resume",
                "thread_id": first["thread_id"],
                "epoch": first["epoch"],
                "last_seq": 0,
            }
        )
        error = await mallory.next_frame(5)
        assert error["type"] == "error" and error["code"] == "not_found"
        assert error["thread_id"] == first["thread_id"]
        # Still connected, nothing of alice's followed: a chat of mallory's own works.
        own = await mallory.run("hello")
    assert {e["thread_id"] for e in own.events} == {own.accepted["thread_id"]}
    assert live_server.metric("vigil_isolation_violations_total") == 0


async def test_a_client_following_more_threads_than_the_frame_burst_resumes_them_all(
    live_server,
):
    threads = live_server.settings.rate_limit_burst + 5
    policy = Reconnect(sleep=NoWait(), rng=random.Random(4))
    async with VigilClient.connect(
        live_server.ws_url, live_server.token("alice"), reconnect=policy
    ) as client:
        for _ in range(threads):
            await client.run("hello")
            # Paced under the chat rate limit, which a fast machine would otherwise outrun:
            # only the resumes are to exceed the burst.
            await asyncio.sleep(1 / live_server.settings.rate_limit_per_s)
        client.websocket.transport.abort()
        await eventually(lambda: len(client.resumed) == threads, timeout_s=30)
    assert client.resume_errors == []
    assert all(frame["recovered"] and frame["replayed"] == 0 for frame in client.resumed)
    assert len({frame["thread_id"] for frame in client.resumed}) == threads


async def test_resumes_of_one_connection_are_answered_in_the_order_asked(live_server):
    async with VigilClient.connect(live_server.ws_url, live_server.token("alice")) as client:
        long = await client.run("What is 2 + 2?")
        for _ in range(3):
            await client.run("What is 3 + 3?", thread_id=long.accepted["thread_id"])
        short = await client.run("hello")
    first, second = long.events[0], short.events[0]
    async with VigilClient.connect(live_server.ws_url, live_server.token("alice")) as client:
        for event in (first, second):
            await client.send(
                {
                    "type": "resume",
                    "thread_id": event["thread_id"],
                    "epoch": event["epoch"],
                    "last_seq": 0,
                }
            )
        answers = [await client.next_frame(10), await client.next_frame(10)]
    assert [a["thread_id"] for a in answers] == [first["thread_id"], second["thread_id"]]
    assert all(a["recovered"] for a in answers)


async def test_a_rate_limited_resume_names_its_thread(live_server):
    async with VigilClient.connect(live_server.ws_url, live_server.token("alice")) as client:
        run = await client.run("hello")
        last = run.events[-1]
        resume = {"type": "resume", "thread_id": last["thread_id"], "epoch": last["epoch"]}
        for _ in range(2 * live_server.settings.rate_limit_burst):
            await client.send({**resume, "last_seq": last["seq"]})
        while (frame := await client.next_frame(5))["type"] != "error":
            assert frame["type"] == "resumed"
    assert (frame["code"], frame["thread_id"]) == ("rate_limited", last["thread_id"])
