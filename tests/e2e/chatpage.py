"""A page object for the chat page: what a user does and sees, through its data-testid
attributes and accessible names (the conventions are listed in core/static/index.html)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from playwright.async_api import ConsoleMessage, Error, Locator, Page, expect

TIMEOUT_MS = 15_000
# connection_ready's connection_id, as the page shows it once connected.
_NON_EMPTY_ID = re.compile(r"^[0-9a-f]{8,}$")

# Records every agent event the page puts on screen, grouped by the DOM mutation batch it
# came in. Each WebSocket message is its own task, so an event rendered as it arrives forms a
# batch of one; a page that buffered a run and drew it at the end would form one big batch.
RECORD_EVENT_INSERTIONS = """
window.__eventInsertions = [];
new MutationObserver((records) => {
  const batch = [];
  for (const record of records) {
    for (const node of record.addedNodes) {
      if (node.nodeType === 1 && node.matches('[data-testid="event"]')) {
        batch.push([node.dataset.type, Number(node.dataset.seq)]);
      }
    }
  }
  if (batch.length) window.__eventInsertions.push(batch);
}).observe(document, { childList: true, subtree: true });
"""


@dataclass(frozen=True)
class ShownEvent:
    type: str
    seq: int
    text: str


@dataclass(frozen=True)
class ShownRun:
    run_id: str
    thread_id: str
    status: str
    events: list[ShownEvent]
    answer: str
    usage: str

    @property
    def types(self) -> list[str]:
        return [event.type for event in self.events]

    @property
    def seqs(self) -> list[int]:
        return [event.seq for event in self.events]

    def event(self, event_type: str) -> ShownEvent:
        return next(event for event in self.events if event.type == event_type)


class ChatPage:
    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.problems: list[str] = []
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("console", self._on_console)

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.problems.append(f"console error: {message.text}")

    async def open(self, user: str = "guest", query: str = "") -> None:
        await self.page.add_init_script(RECORD_EVENT_INSERTIONS)
        await self.page.goto(f"{self.base_url}/{query}")
        if user != "guest":
            await self.page.get_by_label("User name").fill(user)
            await self.page.get_by_role("button", name="Connect").click()
        await self.expect_connected()

    @property
    def state(self) -> Locator:
        return self.page.get_by_test_id("connection-state")

    @property
    def connection_id(self) -> Locator:
        return self.page.get_by_test_id("connection-id")

    @property
    def thread_id(self) -> Locator:
        return self.page.get_by_test_id("thread-id")

    @property
    def resume_state(self) -> Locator:
        return self.page.get_by_test_id("resume-state")

    async def expect_connected(self, other_than: str | None = None) -> str:
        await expect(self.state).to_have_attribute("data-state", "open", timeout=TIMEOUT_MS)
        if other_than is not None:
            await expect(self.connection_id).not_to_have_text(other_than, timeout=TIMEOUT_MS)
        await expect(self.connection_id).to_have_text(_NON_EMPTY_ID, timeout=TIMEOUT_MS)
        return await self.connection_id.inner_text()

    async def send(self, text: str) -> None:
        await self.page.get_by_label("Message").fill(text)
        await self.page.get_by_role("button", name="Send").click()

    async def finished_run(self, index: int) -> ShownRun:
        """Wait until the index-th run on the page shows its answer, then read it."""
        run = self.page.get_by_test_id("run").nth(index)
        await expect(run.get_by_test_id("answer")).to_be_visible(timeout=TIMEOUT_MS)
        rows: list[dict[str, Any]] = await run.get_by_test_id("event").evaluate_all(
            """items => items.map(item => ({
                 type: item.dataset.type,
                 seq: Number(item.dataset.seq),
                 text: item.querySelector('[data-testid="event-body"]').textContent,
               }))"""
        )
        return ShownRun(
            run_id=await _attribute(run, "data-run-id"),
            thread_id=await _attribute(run, "data-thread-id"),
            status=await _attribute(run, "data-status"),
            events=[ShownEvent(**row) for row in rows],
            answer=await run.get_by_test_id("answer-text").inner_text(),
            usage=await run.get_by_test_id("usage").inner_text(),
        )

    async def insertions(self) -> list[list[tuple[str, int]]]:
        batches: list[list[list[Any]]] = await self.page.evaluate("window.__eventInsertions")
        return [[(kind, seq) for kind, seq in batch] for batch in batches]


async def _attribute(locator: Locator, name: str) -> str:
    value = await locator.get_attribute(name)
    if value is None:
        raise Error(f"the run has no {name} attribute")
    return value
