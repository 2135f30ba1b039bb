"""The chat page opened in headless Chromium (the `browser` fixture of tests/fixtures)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from playwright.async_api import Browser

from tests.e2e.chatpage import ChatPage
from tests.fixtures.servers import LiveServer

OpenChat = Callable[..., Awaitable[ChatPage]]


@pytest.fixture
async def open_chat(browser: Browser, start_server: Callable[..., Any]) -> AsyncIterator[OpenChat]:
    """Open the chat page of a server in a fresh browser context, connected as `user`.
    `before_open(page)` runs first (to route the page's WebSocket, for instance); `query` is
    appended to the page's URL (the page's own settings, such as `?gap_timeout_ms=`).

    Depends on `start_server` so that pages close before any server stops: a page left open
    would see the drain (1012) and try to reconnect to a server that is gone."""
    opened: list[ChatPage] = []

    async def open_chat(
        server: LiveServer,
        user: str = "guest",
        before_open: Callable[..., Awaitable[None]] | None = None,
        query: str = "",
    ) -> ChatPage:
        context = await browser.new_context()
        page = await context.new_page()
        chat = ChatPage(page, server.base_url)
        opened.append(chat)
        if before_open is not None:
            await before_open(page)
        await chat.open(user, query)
        return chat

    yield open_chat
    problems = [problem for chat in opened for problem in chat.problems]
    for chat in opened:
        await chat.page.context.close()
    assert not problems, problems


@pytest.fixture
async def chat(open_chat: OpenChat, live_server: LiveServer) -> ChatPage:
    return await open_chat(live_server)
