"""The client coming back after a lost connection, against a scripted server: which frame
answers a resume, and what a resume that cannot recover brings over REST."""

from __future__ import annotations

import asyncio

from core.client import Reconnect, VigilClient
from tests.core.client.fake_server import event, fake_server, stored_events


async def no_wait(_: float) -> None:
    """The injected backoff sleep: 1012 reconnects at once anyway."""


async def test_a_ref_less_error_while_a_resume_is_in_flight_is_not_taken_for_its_answer():
    stored = [event("t", seq) for seq in (1, 2, 3)]
    async with fake_server() as server:
        policy = Reconnect(sleep=no_wait, http_transport=stored_events(stored))
        async with VigilClient.connect(server.ws_url, "token", reconnect=policy) as client:
            first = await server.accepted()
            await first.send(stored[0])
            assert (await client.next_event(5))["seq"] == 1
            await first.close(1012)
            second = await server.accepted()
            resume = await second.receive("resume")
            # The refusal of one of the client's acks, sent just before the resume's answer.
            refused_ack = {"type": "error", "code": "rate_limited", "message": "slow down"}
            await second.send({**refused_ack, "ref": None, "thread_id": None})
            resumed = {"type": "resumed", "thread_id": "t", "recovered": False, "replayed": 0}
            await second.send({**resumed, "epoch": "e1"})
            backfilled = [await client.next_event(5) for _ in range(2)]
            other = await client.next_frame(5)
    assert (resume["thread_id"], resume["last_seq"]) == ("t", 1)
    assert [e["seq"] for e in backfilled] == [2, 3]
    assert other["code"] == "rate_limited"
    assert [frame["recovered"] for frame in client.resumed] == [False]
    assert client.resume_retries == 0


async def test_pings_are_answered_during_a_long_backfill_and_live_events_wait_their_turn():
    stored = [event("t", seq) for seq in (1, 2, 3)]
    asked, release = asyncio.Event(), asyncio.Event()

    async def slow_page() -> None:
        asked.set()
        await release.wait()

    async with fake_server() as server:
        transport = stored_events(stored, before_answer=slow_page)
        policy = Reconnect(sleep=no_wait, http_transport=transport)
        async with VigilClient.connect(server.ws_url, "token", reconnect=policy) as client:
            first = await server.accepted()
            await first.send(stored[0])
            assert (await client.next_event(5))["seq"] == 1
            await first.close(1012)
            second = await server.accepted()
            await second.receive("resume")
            resumed = {"type": "resumed", "thread_id": "t", "recovered": False, "replayed": 0}
            await second.send({**resumed, "epoch": "e1"})
            await asked.wait()  # the backfill's page is being fetched, and held there
            await second.send({"type": "ping", "ts": 7})
            pong = await second.receive("pong")
            # A live event past the gap, while the backfill is still under way.
            await second.send(event("t", 4))
            release.set()
            delivered = [await client.next_event(5) for _ in range(3)]
            while (await second.receive("ack"))["seq"] < 4:
                pass  # the cumulative ack reaches the live event once the gap is filled
    assert pong["ts"] == 7
    assert [e["seq"] for e in delivered] == [2, 3, 4]
    assert client.backfilled == 2


async def test_a_gap_no_redelivery_fills_is_healed_by_resuming_its_thread():
    # Seq 2 was lost between replicas: the replica holding this connection never got it,
    # and the one that emitted it resends only to its own connections.
    stored = [event("t", seq) for seq in (1, 2, 3)]
    async with fake_server() as server:
        policy = Reconnect(sleep=no_wait, gap_timeout_s=0.05)
        async with VigilClient.connect(server.ws_url, "token", reconnect=policy) as client:
            connection = await server.accepted()
            await connection.send(stored[0])
            assert (await client.next_event(5))["seq"] == 1
            await connection.send(stored[2])
            resume = await connection.receive("resume")
            for replayed in stored[1:]:
                await connection.send(replayed)
            resumed = {"type": "resumed", "thread_id": "t", "recovered": True, "replayed": 2}
            await connection.send({**resumed, "epoch": "e1"})
            healed = [await client.next_event(5) for _ in range(2)]
    assert (resume["thread_id"], resume["epoch"], resume["last_seq"]) == ("t", "e1", 1)
    assert [e["seq"] for e in healed] == [2, 3]
    assert client.duplicates_dropped == 1  # seq 3 came twice: live, then in the replay
    assert [frame["recovered"] for frame in client.resumed] == [True]
