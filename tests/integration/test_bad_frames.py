"""Bad frames get their documented error and change nothing else."""

import asyncio
import contextlib
import json
import sqlite3

import pytest
from sqlalchemy.engine import make_url

from core.client import VigilClient
from tests.integration.runs import assert_well_formed_run


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("{not json", "invalid_json"),
        ("[]", "invalid_json"),
        (json.dumps({"type": "subscribe"}), "unknown_type"),
        (json.dumps({"type": "chat", "id": "m", "thread_id": None}), "invalid_field"),
        (
            json.dumps({"type": "chat", "id": "m", "thread_id": None, "text": "   "}),
            "invalid_field",
        ),
        (json.dumps({"type": "ack", "thread_id": "nope", "seq": 1}), "not_found"),
        (
            json.dumps({"type": "resume", "thread_id": "nope", "epoch": "e", "last_seq": 0}),
            "not_found",
        ),
        (json.dumps({"type": "cancel", "run_id": "nope"}), "not_found"),
    ],
)
async def test_a_bad_frame_gets_an_error_and_the_connection_stays_usable(live_server, raw, code):
    async with VigilClient.connect(live_server.ws_url, live_server.token("alice")) as client:
        await client.websocket.send(raw)
        error = await client.next_frame(5)
        assert (error["type"], error["code"]) == ("error", code)
        result = await client.run("What is 1 + 1?")
    assert_well_formed_run(result.events)
    assert live_server.metric("vigil_ws_frames_rejected_total", {"code": code}) == 1


async def test_oversized_text_is_too_large_and_binary_frames_are_refused(start_server):
    server = await start_server(max_text_chars=50)
    async with VigilClient.connect(server.ws_url, server.token("alice")) as client:
        await client.send({"type": "chat", "id": "big", "thread_id": None, "text": "x" * 51})
        assert (await client.next_frame(5))["code"] == "too_large"
        await client.websocket.send(b"\x00\x01binary")
        assert (await client.next_frame(5))["code"] == "invalid_json"
        assert_well_formed_run((await client.run("hello")).events)


async def test_an_ack_for_a_seq_never_sent_is_refused(live_server):
    async with VigilClient.connect(live_server.ws_url, live_server.token("alice")) as client:
        result = await client.run("hello")
        thread_id = result.accepted["thread_id"]
        await client.send({"type": "ack", "thread_id": thread_id, "seq": 10_000})
        error = await client.next_frame(5)
    assert (error["code"], "10000" in error["message"]) == ("invalid_field", True)
    assert (error["ref"], error["thread_id"]) == (None, None)


async def test_an_ack_for_another_users_thread_is_refused_and_retires_nothing(start_server):
    server = await start_server(ack_timeout_s=60)
    async with VigilClient.connect(server.ws_url, server.token("alice")) as alice:
        accepted = await alice.chat("hello")
        async with VigilClient.connect(server.ws_url, server.token("bob")) as bob:
            await bob.send({"type": "ack", "thread_id": accepted["thread_id"], "seq": 1})
            assert (await bob.next_frame(5))["code"] == "not_found"


async def test_a_flood_is_rate_limited_without_touching_another_user(start_server):
    server = await start_server(rate_limit_per_s=5, rate_limit_burst=5)
    async with (
        VigilClient.connect(server.ws_url, server.token("flooder")) as flooder,
        VigilClient.connect(server.ws_url, server.token("alice")) as alice,
    ):
        for _ in range(80):  # pongs have ten times the budget of other frames
            await flooder.send({"type": "pong", "ts": 0})
        codes = set()
        while True:
            try:
                codes.add((await flooder.next_frame(1))["code"])
            except TimeoutError:
                break
        assert codes == {"rate_limited"}
        assert_well_formed_run((await alice.run("What is 3 * 3?")).events)
    assert server.metric("vigil_ws_frames_rejected_total", {"code": "rate_limited"}) >= 20


async def test_a_frame_over_the_transport_limit_closes_with_1009(start_server):
    server = await start_server(max_frame_bytes=2048)
    client = await VigilClient.open(server.ws_url, server.token("alice"))
    await client.websocket.send("x" * 4096)
    await asyncio.wait_for(client.websocket.wait_closed(), 5)
    assert client.websocket.close_code == 1009


def corrupt_thread(server, thread_id: str) -> None:
    """Leave the thread's rows (its own and its runs') unreadable: the server's handlers
    then fail with a bug of their own (a ValueError reading them back), not with a
    database error."""
    path = make_url(server.settings.database_url).database
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE threads SET created_at = 'not a time' WHERE id = ?", (thread_id,))
        db.execute("UPDATE runs SET started_at = 'not a time' WHERE thread_id = ?", (thread_id,))


async def test_a_frame_whose_handler_fails_is_answered_with_its_ref_or_its_thread(live_server):
    async with VigilClient.connect(live_server.ws_url, live_server.token("alice")) as client:
        run = await client.run("hello")
        thread_id = run.accepted["thread_id"]
        corrupt_thread(live_server, thread_id)
        # The chat waiting for its answer gets it now, not at its timeout. (Sent again
        # under its id, the chat reads its run back to answer with it.)
        with pytest.raises(RuntimeError, match="unavailable"):
            await client.chat("hello", thread_id, msg_id=run.accepted["id"], timeout=30)
        epoch = run.events[0]["epoch"]
        await client.send({"type": "resume", "thread_id": thread_id, "epoch": epoch, "last_seq": 0})
        error = await client.next_frame(5)
    assert (error["code"], error["ref"], error["thread_id"]) == ("unavailable", None, thread_id)
    assert live_server.metric("vigil_internal_errors_total", {"where": "frame"}) == 2
