"""Simulated users against a scripted server: each chat gets its own answer."""

from __future__ import annotations

import asyncio

from core.loadgen.stats import Recorder
from core.loadgen.users import LoadSpec, run_load
from tests.core.client.fake_server import FakeServer, event, fake_server


async def answer_each_chat_after_a_stray_error(server: FakeServer, runs: int) -> None:
    """Before each chat's answer, the ref-less refusal of some ack or pong of the user's."""
    connection = await server.accepted()
    for n in range(1, runs + 1):
        chat = await connection.receive("chat")
        stray = {"type": "error", "code": "rate_limited", "message": "slow down"}
        await connection.send({**stray, "ref": None, "thread_id": None})
        run_id = f"r{n}"
        accepted = {"type": "chat_accepted", "id": chat["id"], "thread_id": "t", "run_id": run_id}
        await connection.send({**accepted, "epoch": "e1"})
        done = {"status": "completed", "text": "391", "usage": {}, "duration_ms": 1}
        await connection.send(event("t", 2 * n - 1, run_id=run_id, kind="agent_started"))
        await connection.send(event("t", 2 * n, run_id=run_id, kind="agent_completed", data=done))


async def test_a_stray_error_is_not_taken_for_the_answer_to_a_users_chat():
    async with fake_server() as server:
        spec = LoadSpec(ws_url=server.ws_url, users=1, runs_per_user=2, run_timeout_s=10)
        recorder = Recorder()
        script = asyncio.create_task(answer_each_chat_after_a_stray_error(server, 2))
        summary = await run_load(spec, lambda _: "token", recorder)
        await script
    assert summary.as_dict()["errors"] == {}
    assert summary.as_dict()["runs_completed"] == 2
    assert summary.as_dict()["events"] == 4
