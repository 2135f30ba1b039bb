"""The chat page, driven as a user would in headless Chromium, against an in-process backend
with the deterministic offline model."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, Request, WebSocketRoute, expect

from tests.e2e.chatpage import TIMEOUT_MS, ChatPage, ShownRun
from tests.e2e.conftest import OpenChat
from tests.fixtures.servers import LiveServer

pytestmark = pytest.mark.e2e

CRITICAL_EVENTS = [
    "agent_started",
    "agent_thinking",
    "tool_executing",
    "tool_completed",
    "agent_completed",
]


async def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for a server-side effect of something the page sent (acks, pongs)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not hold in time")
        await asyncio.sleep(0.05)


def assert_one_well_ordered_run(run: ShownRun, first_seq: int) -> None:
    assert run.types[0] == "agent_started", run.types
    assert run.types[1] == "agent_thinking", run.types
    assert run.types[-1] == "agent_completed", run.types
    assert run.types.count("agent_started") == run.types.count("agent_completed") == 1
    assert run.seqs == list(range(first_seq, first_seq + len(run.seqs))), run.seqs


def close_every_socket(server: LiveServer, code: int) -> None:
    for connection in server.services.hub.all():
        connection.request_close(code)


async def test_a_tool_question_shows_each_event_live_then_the_answer(
    chat: ChatPage, live_server: LiveServer
) -> None:
    await chat.send("What is 17 * 23?")
    run = await chat.finished_run(0)

    assert_one_well_ordered_run(run, first_seq=1)
    assert [t for t in CRITICAL_EVENTS if t in run.types] == CRITICAL_EVENTS
    assert run.types.index("tool_executing") < run.types.index("tool_completed")
    tool_call = run.event("tool_executing").text
    assert "calculator" in tool_call and "17" in tool_call and "23" in tool_call
    tool_result = run.event("tool_completed").text
    assert "ok" in tool_result and "391" in tool_result and " ms" in tool_result
    assert "completed" in run.event("agent_completed").text
    assert run.status == "completed"
    assert "391" in run.answer
    assert "input tokens" in run.usage
    # Live: each event went on the page by itself, in the order it arrived.
    assert await chat.insertions() == [[(e.type, e.seq)] for e in run.events]
    # And the page acked every one of them.
    await eventually(
        lambda: all(
            live_server.metric("vigil_events_acked_total", {"type": t}) == run.types.count(t)
            for t in set(run.types)
        )
    )


async def test_a_second_message_continues_the_same_thread(
    chat: ChatPage, live_server: LiveServer
) -> None:
    await chat.send("What is 17 * 23?")
    first = await chat.finished_run(0)
    await expect(chat.thread_id).to_have_text(first.thread_id)

    await chat.send("What is 2 + 2?")
    second = await chat.finished_run(1)

    assert second.thread_id == first.thread_id
    assert second.run_id != first.run_id
    assert_one_well_ordered_run(second, first_seq=first.seqs[-1] + 1)
    assert "4" in second.answer
    token = live_server.token("guest")
    async with httpx.AsyncClient(base_url=live_server.base_url) as http:
        response = await http.get("/api/threads", headers={"Authorization": f"Bearer {token}"})
    assert [t["thread_id"] for t in response.json()["threads"]] == [first.thread_id]


async def test_a_message_without_a_tool_shows_started_thinking_completed(
    chat: ChatPage,
) -> None:
    await chat.send("hello")
    run = await chat.finished_run(0)

    assert_one_well_ordered_run(run, first_seq=1)
    assert set(run.types[1:-1]) == {"agent_thinking"}, run.types
    assert run.answer


async def test_server_text_is_shown_as_text_never_as_markup(chat: ChatPage) -> None:
    text = '<img src=x onerror="window.__injected = 1"> hello'
    await chat.send(text)
    run = await chat.finished_run(0)

    await expect(chat.page.get_by_test_id("user-message")).to_have_text(text)
    assert text in run.event("agent_started").text
    assert await chat.page.locator("[data-testid=conversation] img").count() == 0
    assert await chat.page.evaluate("window.__injected") is None


async def test_the_page_answers_heartbeats_and_keeps_its_connection(
    start_server: Callable[..., Any], open_chat: OpenChat
) -> None:
    server: LiveServer = await start_server(heartbeat_interval_s=0.2)
    chat = await open_chat(server)
    connection_id = await chat.expect_connected()

    # Two unanswered pings close the socket (4408); five answered ones prove the pongs.
    await eventually(lambda: server.metric("vigil_heartbeat_rtt_seconds_count") >= 5)
    await expect(chat.connection_id).to_have_text(connection_id)
    await expect(chat.state).to_have_attribute("data-state", "open")


@pytest.mark.parametrize("code", [1001, 1011, 1012, 4408, 4409])
async def test_a_dropped_connection_reconnects_and_resumes_the_thread(
    chat: ChatPage, live_server: LiveServer, code: int
) -> None:
    await chat.send("What is 17 * 23?")
    first = await chat.finished_run(0)
    before = await chat.expect_connected()

    close_every_socket(live_server, code)
    await chat.expect_connected(other_than=before)
    await expect(chat.resume_state).to_have_attribute("data-recovered", "true")
    await expect(chat.resume_state).to_have_attribute("data-thread-id", first.thread_id)

    await chat.send("hello")
    second = await chat.finished_run(1)
    assert second.thread_id == first.thread_id
    assert_one_well_ordered_run(second, first_seq=first.seqs[-1] + 1)
    assert live_server.metric("vigil_resumes_total", {"recovered": "true"}) == 1


@pytest.mark.parametrize("code", [1000, 4403])
async def test_a_close_that_means_stop_is_not_retried(
    chat: ChatPage, live_server: LiveServer, code: int
) -> None:
    close_every_socket(live_server, code)
    await expect(chat.state).to_have_attribute("data-state", "closed")
    await expect(chat.state).to_contain_text(f"closed ({code}")
    await expect(chat.state).to_contain_text("not reconnecting")


async def test_an_expired_token_close_fetches_a_new_token_before_reconnecting(
    chat: ChatPage, live_server: LiveServer
) -> None:
    token_requests: list[Request] = []
    chat.page.on(
        "request", lambda r: token_requests.append(r) if "/api/dev/token" in r.url else None
    )
    before = await chat.expect_connected()
    close_every_socket(live_server, 4401)
    await chat.expect_connected(other_than=before)
    assert len(token_requests) == 1


def relay(
    on_server_frame: Callable[[WebSocketRoute, dict[str, Any]], None],
    client_frames: list[dict[str, Any]],
) -> Callable[[Page], Any]:
    """Put a relay between the page and the server that records the page's frames and hands
    each server frame to `on_server_frame` (which forwards it, or not, or twice)."""

    def handle(page_side: WebSocketRoute) -> None:
        server_side = page_side.connect_to_server()

        def from_page(message: str | bytes) -> None:
            client_frames.append(json.loads(message))
            server_side.send(message)

        page_side.on_message(from_page)
        server_side.on_message(lambda message: on_server_frame(page_side, json.loads(message)))

    async def install(page: Page) -> None:
        await page.route_web_socket("**/ws", handle)

    return install


async def test_a_gap_no_resend_fills_is_healed_with_a_resume(
    open_chat: OpenChat, start_server: Callable[..., Any]
) -> None:
    """An event lost on its way and never resent (here: the server resends only after a
    minute) is asked for again once the gap has lasted the page's gap timeout."""
    server = await start_server(ack_timeout_s=60)
    sent_by_page: list[dict[str, Any]] = []
    dropped: list[int] = []

    def drop_the_first_thinking(page_side: WebSocketRoute, frame: dict[str, Any]) -> None:
        if frame["type"] == "agent_thinking" and not dropped:
            dropped.append(frame["seq"])
            return
        page_side.send(json.dumps(frame))

    chat = await open_chat(
        server,
        before_open=relay(drop_the_first_thinking, sent_by_page),
        query="?gap_timeout_ms=300",
    )
    await chat.send("What is 17 * 23?")
    await eventually(lambda: bool(dropped))
    healed = chat.page.get_by_test_id("run").first.locator(f'[data-seq="{dropped[0]}"]')
    await expect(healed).to_have_attribute("data-type", "agent_thinking", timeout=TIMEOUT_MS)
    shown = await chat.finished_run(0)
    assert sorted(shown.seqs) == list(range(1, len(shown.seqs) + 1))
    resumes = [f for f in sent_by_page if f["type"] == "resume"]
    assert [r["last_seq"] for r in resumes] == [dropped[0] - 1]
    await eventually(
        lambda: [f["seq"] for f in sent_by_page if f["type"] == "ack"][-1] == max(shown.seqs)
    )


async def test_a_redelivered_event_is_shown_once_and_acked(
    open_chat: OpenChat, live_server: LiveServer
) -> None:
    sent_by_page: list[dict[str, Any]] = []

    def twice(page_side: WebSocketRoute, frame: dict[str, Any]) -> None:
        page_side.send(json.dumps(frame))
        if "seq" in frame:
            page_side.send(json.dumps(frame))

    chat = await open_chat(live_server, before_open=relay(twice, sent_by_page))
    await chat.send("What is 17 * 23?")
    run = await chat.finished_run(0)

    assert_one_well_ordered_run(run, first_seq=1)
    assert "391" in run.answer
    await eventually(
        lambda: [f["seq"] for f in sent_by_page if f["type"] == "ack"][-2:] == [run.seqs[-1]] * 2
    )
    acks = [f for f in sent_by_page if f["type"] == "ack"]
    assert {f["thread_id"] for f in acks} == {run.thread_id}
    # One cumulative ack per frame received, duplicates included.
    assert [f["seq"] for f in acks] == [seq for seq in run.seqs for _ in range(2)]


async def test_a_resume_that_cannot_recover_reloads_the_thread_over_rest(
    open_chat: OpenChat, live_server: LiveServer
) -> None:
    sent_by_page: list[dict[str, Any]] = []
    connections: set[int] = set()

    def stale_epoch_on_first_connection(page_side: WebSocketRoute, frame: dict[str, Any]) -> None:
        connections.add(id(page_side))
        if "epoch" in frame and len(connections) == 1:
            frame = {**frame, "epoch": "an-epoch-the-server-lost"}
        page_side.send(json.dumps(frame))

    chat = await open_chat(
        live_server, before_open=relay(stale_epoch_on_first_connection, sent_by_page)
    )
    rest_requests: list[Request] = []
    chat.page.on("request", lambda r: rest_requests.append(r) if "/events" in r.url else None)
    await chat.send("What is 17 * 23?")
    first = await chat.finished_run(0)
    before = await chat.expect_connected()

    close_every_socket(live_server, 1011)
    await chat.expect_connected(other_than=before)
    await expect(chat.resume_state).to_have_attribute("data-recovered", "false")

    reloaded = await chat.finished_run(0)
    assert (reloaded.run_id, reloaded.seqs, reloaded.answer) == (
        first.run_id,
        first.seqs,
        first.answer,
    )
    resume = next(f for f in sent_by_page if f["type"] == "resume")
    assert resume == {
        "type": "resume",
        "thread_id": first.thread_id,
        "epoch": "an-epoch-the-server-lost",
        "last_seq": first.seqs[-1],
    }
    token = rest_requests[0].headers["authorization"]
    assert token.startswith("Bearer ") and f"/api/threads/{first.thread_id}/events" in (
        rest_requests[0].url
    )
    # The conversation goes on from the reloaded thread.
    await chat.send("hello")
    second = await chat.finished_run(1)
    assert second.thread_id == first.thread_id
    assert second.seqs[0] == first.seqs[-1] + 1
    await expect(chat.page.get_by_test_id("run")).to_have_count(2, timeout=TIMEOUT_MS)


async def test_a_chat_whose_acceptance_was_lost_is_sent_again_and_runs_once(
    open_chat: OpenChat, live_server: LiveServer
) -> None:
    sent_by_page: list[dict[str, Any]] = []
    connections: set[int] = set()

    def lose_replies_on_first_connection(page_side: WebSocketRoute, frame: dict[str, Any]) -> None:
        connections.add(id(page_side))
        if len(connections) == 1 and frame["type"] not in ("connection_ready", "ping"):
            return
        page_side.send(json.dumps(frame))

    chat = await open_chat(
        live_server, before_open=relay(lose_replies_on_first_connection, sent_by_page)
    )
    before = await chat.expect_connected()
    await chat.send("What is 17 * 23?")
    await eventually(lambda: live_server.metric("vigil_runs_total", {"status": "completed"}) == 1)

    close_every_socket(live_server, 1011)
    await chat.expect_connected(other_than=before)
    run = await chat.finished_run(0)

    assert_one_well_ordered_run(run, first_seq=1)
    assert "391" in run.answer
    chats = [f for f in sent_by_page if f["type"] == "chat"]
    assert len(chats) == 2 and chats[0] == chats[1]
    assert live_server.metric("vigil_runs_total", {"status": "completed"}) == 1
    await expect(chat.page.get_by_test_id("user-message")).to_have_count(1)
    await expect(chat.page.get_by_test_id("run")).to_have_count(1)


async def test_reconnects_follow_the_close_code_table_with_jittered_exponential_backoff(
    chat: ChatPage,
) -> None:
    decisions = await chat.page.evaluate(
        """async () => {
            const core = await import("/static/chat-core.js");
            const codes = [
              1000, 1001, 1002, 1006, 1007, 1009, 1011, 1012, 4401, 4403, 4408, 4409, 4429,
            ];
            return {
              actions: Object.fromEntries(codes.map((code) => [code, core.closeAction(code)])),
              lowest: [0, 1, 2, 3, 10].map((n) => core.backoffDelay(n, () => 0)),
              highest: [0, 1, 2, 3, 10].map((n) => core.backoffDelay(n, () => 0.999999)),
            };
        }"""
    )
    assert decisions["actions"] == {
        "1000": "stop",
        "1001": "backoff",
        "1002": "stop",
        "1006": "backoff",
        "1007": "stop",
        "1009": "stop",
        "1011": "backoff",
        "1012": "immediate",
        "4401": "refresh",
        "4403": "stop",
        "4408": "backoff",
        "4409": "backoff",
        "4429": "backoff",
    }
    assert decisions["lowest"] == [0, 0, 0, 0, 0]  # full jitter: any delay down to zero
    assert decisions["highest"] == [499, 999, 1999, 3999, 29999]  # doubling, capped at 30 s
