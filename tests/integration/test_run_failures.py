"""Runs that cannot finish normally still end with exactly one agent_completed."""

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Sequence

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from core.agent.model import Message, ModelReply, ToolCall, ToolSpec, Usage
from core.agent.providers.offline import OfflineProvider
from core.agent.tools.base import ToolContext, object_schema
from core.client import VigilClient
from tests.integration.runs import assert_well_formed_run


class StallingProvider:
    """A model endpoint that never answers (until released)."""

    name = "stalling"
    model = "stall-1"

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self._offline = OfflineProvider()

    async def complete(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> ModelReply:
        await self.release.wait()
        return await self._offline.complete(messages, tools)

    async def aclose(self) -> None:
        self.release.set()


class StallingTool:
    """A tool that never returns (until released)."""

    spec = ToolSpec("stall", "Waits.", object_schema({}))

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def run(self, arguments: dict, ctx: ToolContext) -> dict:
        await self.release.wait()
        return {}


class StallingToolProvider:
    """A model that calls the stalling tool, then answers."""

    name = "tool-caller"
    model = "tool-caller-1"

    async def complete(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> ModelReply:
        if any(message.role == "tool" for message in messages):
            return ModelReply("done", (), Usage(1, 1), "Answering")
        return ModelReply("", (ToolCall("call-1", "stall", {}),), Usage(1, 1), "Calling stall")

    async def aclose(self) -> None:
        return None


async def collect_run(client: VigilClient, run_id: str) -> list[dict]:
    """The events of one run; other runs' events are kept for their own collect_run."""
    stash: dict[str, list[dict]] = client.__dict__.setdefault("stash", {})
    events = stash.setdefault(run_id, [])
    while not events or events[-1]["type"] != "agent_completed":
        event = await client.next_event(20)
        stash.setdefault(event["run_id"], []).append(event)
    return stash.pop(run_id)


async def test_a_stalled_model_times_out_naming_the_phase(start_server):
    server = await start_server(provider_instance=StallingProvider(), model_call_timeout_s=0.3)
    async with VigilClient.connect(server.ws_url, server.token("alice")) as client:
        accepted = await client.chat("hello")
        events = await collect_run(client, accepted["run_id"])
    assert [e["type"] for e in events] == [
        "agent_started",
        "agent_thinking",
        "agent_error",
        "agent_completed",
    ]
    assert events[2]["data"]["reason"] == "phase_timeout"
    assert events[2]["data"]["phase"] == "model_call"
    assert events[3]["data"]["status"] == "timeout"
    assert server.metric("vigil_runs_total", {"status": "timeout"}) == 1


async def test_the_run_timeout_bounds_the_whole_run(start_server):
    server = await start_server(provider_instance=StallingProvider(), run_timeout_s=0.3)
    async with VigilClient.connect(server.ws_url, server.token("alice")) as client:
        accepted = await client.chat("hello")
        events = await collect_run(client, accepted["run_id"])
    error = next(e for e in events if e["type"] == "agent_error")
    assert (error["data"]["reason"], error["data"]["phase"]) == ("run_timeout", "model_call")
    assert events[-1]["data"]["status"] == "timeout"


async def test_a_run_timing_out_mid_tool_closes_the_tool_call_before_its_error(start_server):
    server = await start_server(
        provider_instance=StallingToolProvider(), run_timeout_s=0.3, tool_timeout_s=60
    )
    tool = StallingTool()
    server.services.tools.register(tool)
    async with VigilClient.connect(server.ws_url, server.token("alice")) as client:
        accepted = await client.chat("hello")
        events = await collect_run(client, accepted["run_id"])
    tool.release.set()
    assert_well_formed_run(events)
    assert [e["type"] for e in events][-4:] == [
        "tool_executing",
        "tool_completed",
        "agent_error",
        "agent_completed",
    ]
    closing = events[-3]["data"]
    assert (closing["tool"], closing["call_id"], closing["status"]) == ("stall", "call-1", "error")
    assert closing["error"] == "run_timeout" and closing["duration_ms"] >= 0
    assert events[-2]["data"]["reason"] == "run_timeout"
    assert events[-1]["data"]["status"] == "timeout"


async def test_a_run_cancelled_mid_tool_closes_the_tool_call_too(start_server):
    server = await start_server(provider_instance=StallingToolProvider(), tool_timeout_s=60)
    tool = StallingTool()
    server.services.tools.register(tool)
    async with VigilClient.connect(server.ws_url, server.token("alice")) as client:
        accepted = await client.chat("hello")
        while (await client.next_event(10))["type"] != "tool_executing":
            pass
        await client.send({"type": "cancel", "run_id": accepted["run_id"]})
        rest = await collect_run(client, accepted["run_id"])
    tool.release.set()
    assert [e["type"] for e in rest] == ["tool_completed", "agent_completed"]
    assert (rest[0]["data"]["status"], rest[0]["data"]["error"]) == ("error", "cancelled")
    assert rest[1]["data"]["status"] == "cancelled"


async def test_an_open_circuit_makes_preflight_refuse_at_once(start_server):
    server = await start_server(
        provider_instance=StallingProvider(),
        model_call_timeout_s=0.2,
        circuit_failure_threshold=2,
        circuit_reset_timeout_s=60,
    )
    async with VigilClient.connect(server.ws_url, server.token("alice")) as client:
        for _ in range(2):
            accepted = await client.chat("hello")
            await collect_run(client, accepted["run_id"])
        accepted = await client.chat("hello")
        events = await collect_run(client, accepted["run_id"])
    assert [e["type"] for e in events] == ["agent_error", "agent_completed"]
    assert events[0]["data"]["reason"] == "circuit_open"
    assert events[0]["data"]["phase"] == "preflight"
    assert events[1]["data"]["status"] == "failed"
    assert server.metric("vigil_preflight_refusals_total", {"reason": "circuit_open"}) == 1
    assert server.metric("vigil_provider_circuit_state", {"provider": "stalling"}) == 2


async def test_a_user_over_the_concurrency_limit_is_refused_in_preflight(start_server):
    provider = StallingProvider()
    server = await start_server(provider_instance=provider, max_runs_per_user=2)
    async with VigilClient.connect(server.ws_url, server.token("alice")) as client:
        running = [await client.chat("hello") for _ in range(2)]
        refused = await client.chat("hello")
        refused_events = await collect_run(client, refused["run_id"])
        provider.release.set()
        for accepted in running:
            assert_well_formed_run(await collect_run(client, accepted["run_id"]))
    assert refused_events[0]["data"]["reason"] == "user_concurrency_limit"
    assert refused_events[-1]["data"]["status"] == "failed"


async def test_another_user_is_not_limited_by_my_runs(start_server):
    provider = StallingProvider()
    server = await start_server(provider_instance=provider, max_runs_per_user=1)
    async with (
        VigilClient.connect(server.ws_url, server.token("alice")) as alice,
        VigilClient.connect(server.ws_url, server.token("bob")) as bob,
    ):
        mine = await alice.chat("hello")
        theirs = await bob.chat("hello")
        started = await bob.next_event(5)
        assert (started["type"], started["run_id"]) == ("agent_started", theirs["run_id"])
        provider.release.set()
        await collect_run(alice, mine["run_id"])


async def test_a_user_can_cancel_their_own_run_but_not_anothers(start_server):
    server = await start_server(provider_instance=StallingProvider())
    async with (
        VigilClient.connect(server.ws_url, server.token("alice")) as alice,
        VigilClient.connect(server.ws_url, server.token("bob")) as bob,
    ):
        accepted = await alice.chat("hello")
        await alice.next_event(5)  # agent_started
        await bob.send({"type": "cancel", "run_id": accepted["run_id"]})
        error = await bob.next_frame(5)
        assert (error["type"], error["code"]) == ("error", "not_found")
        await alice.send({"type": "cancel", "run_id": accepted["run_id"]})
        events = await collect_run(alice, accepted["run_id"])
    assert events[-1]["type"] == "agent_completed"
    assert events[-1]["data"]["status"] == "cancelled"


class CallsEchoThenAnswers:
    """A model that calls the echo tool once, then answers with ``thinking``."""

    name = "echo-caller"
    model = "echo-caller-1"

    def __init__(self, thinking: str) -> None:
        self._thinking = thinking

    async def complete(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> ModelReply:
        if any(message.role == "tool" for message in messages):
            return ModelReply("done", (), Usage(1, 1), self._thinking)
        return ModelReply("", (ToolCall("call-1", "echo", {}),), Usage(1, 1), "Calling echo")

    async def aclose(self) -> None:
        return None


class EchoTool:
    spec = ToolSpec("echo", "Returns a set text.", object_schema({}))

    def __init__(self, text: str) -> None:
        self._text = text

    async def run(self, arguments: dict, ctx: ToolContext) -> dict:
        return {"echo": self._text}


@contextlib.asynccontextmanager
async def refuse_events_with(database_url: str, marker: str) -> AsyncIterator[None]:
    """A trigger that fails the insert of any event whose payload holds ``marker``, as a
    constraint would: a real refusal by the database, of that event alone."""
    engine = create_async_engine(database_url)
    if engine.dialect.name == "sqlite":
        create = [
            f"CREATE TRIGGER poison_{marker} BEFORE INSERT ON events "
            f"WHEN NEW.payload LIKE '%{marker}%' BEGIN SELECT RAISE(ABORT, 'poisoned'); END"
        ]
        drop = [f"DROP TRIGGER poison_{marker}"]
    else:
        create = [
            f"CREATE FUNCTION poison_{marker}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NEW.payload::text LIKE '%{marker}%' THEN "
            "RAISE EXCEPTION 'poisoned' USING ERRCODE = 'check_violation'; END IF; "
            "RETURN NEW; END $$",
            f"CREATE TRIGGER poison_{marker} BEFORE INSERT ON events "
            f"FOR EACH ROW EXECUTE FUNCTION poison_{marker}()",
        ]
        drop = [f"DROP TRIGGER poison_{marker} ON events", f"DROP FUNCTION poison_{marker}"]
    try:
        async with engine.begin() as connection:
            for statement in create:
                await connection.execute(text(statement))
        yield
        async with engine.begin() as connection:
            for statement in drop:
                await connection.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.mark.parametrize("in_tool_result", [False, True], ids=["answer", "tool_result"])
async def test_a_run_whose_last_events_are_refused_ends_failed_never_completed(
    start_server, database_url, in_tool_result
):
    """The answer's agent_completed is queued with the run's last events, not after them
    are stored: it must still never record a run completed that lost one of them."""
    marker = f"poison{uuid.uuid4().hex[:8]}"
    server = await start_server(
        database_url=database_url,
        provider_instance=CallsEchoThenAnswers("fine" if in_tool_result else marker),
    )
    server.services.tools.register(EchoTool(marker if in_tool_result else "fine"))
    async with (
        refuse_events_with(database_url, marker),
        VigilClient.connect(server.ws_url, server.token(f"u-{marker}")) as client,
    ):
        accepted = await client.chat("hello")
        events = await collect_run(client, accepted["run_id"])
    assert_well_formed_run(events)
    types = [e["type"] for e in events]
    assert types[-2:] == ["agent_error", "agent_completed"], types
    assert events[-2]["data"]["reason"] == "database_integrity_violation"
    assert events[-1]["data"]["status"] == "failed"
    assert all(marker not in json.dumps(e["data"]) for e in events)
    closing = next(e["data"] for e in events if e["type"] == "tool_completed")
    if in_tool_result:  # the tool's own tool_completed was refused: the ending closed the call
        assert (closing["status"], closing["error"]) == ("error", "database_integrity_violation")
    else:
        assert closing["status"] == "ok"
    run = await server.services.repository.find_run(f"u-{marker}", accepted["id"])
    assert run is not None and run.status == "failed"
