"""The client coming back after a lost connection, against a scripted server: which frame
answers a resume, and what a resume that cannot recover brings over REST."""

from __future__ import annotations

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
