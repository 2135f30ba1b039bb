"""The status page in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright)."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from tests.sidecar.conftest import RunningSidecar, until
from tests.sidecar.test_sidecar import slo_doc

pytestmark = pytest.mark.e2e


async def open_page(browser: Browser, url: str) -> Page:
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"{url}/?refresh=300")
    await expect(page.locator("body[data-loaded]")).to_be_attached()
    assert errors == []
    return page


async def test_the_page_shows_slos_criteria_canary_timings_and_memory(
    browser: Browser, watching_sidecar: RunningSidecar
) -> None:
    await until(
        lambda: (
            (d := slo_doc(watching_sidecar.url))["canary"]["recent"] and d["memory"]["rss_bytes"]
        ),
        what="a canary run and a memory sample",
    )
    page = await open_page(browser, watching_sidecar.url)
    await expect(page.locator("#slos tbody tr")).to_have_count(5)
    await expect(page.locator('#slos tr[data-slo="event-delivery"]')).to_contain_text("99.9 %")
    await expect(page.locator("#criteria tbody tr")).to_have_count(8)
    await expect(page.locator("#criteria")).to_contain_text("Zero cross-user contamination")
    run = page.locator('#canary tr[data-outcome="success"]').first
    for phase in ("handshake", "agent_started", "agent_thinking", "tool_pair", "agent_completed"):
        await expect(run.locator(f'[data-phase="{phase}"]')).to_contain_text(" ms")
    await until(lambda: slo_doc(watching_sidecar.url)["traces"]["runs"], what="a run's trace")
    await page.reload()
    traced = page.locator('#traces tr[data-status="ok"]').first
    await expect(traced.locator('[data-span="admission"]')).to_contain_text(" ms")
    await expect(traced.locator('[data-span="preflight"]')).to_contain_text(" ms")
    await expect(page.locator('#probes [data-probe="readyz"]')).to_contain_text("up")
    await expect(page.locator("#memory")).to_contain_text("RSS")
    await expect(page.locator("#memory [data-state]")).not_to_have_attribute(
        "data-state", "unknown"
    )


async def test_the_page_refreshes_itself_and_says_when_the_backend_is_down(
    browser: Browser, orphan_sidecar: RunningSidecar
) -> None:
    page = await browser.new_page()
    await page.goto(f"{orphan_sidecar.url}/?refresh=200")
    # At least three loads: the count moves on every 200 ms, faster than expect() polls, so
    # waiting for exactly "3" could miss it.
    await page.wait_for_function("Number(document.body.dataset.loaded || 0) >= 3", timeout=15000)
    await expect(page.locator('#probes [data-probe="healthz"]')).to_contain_text("down")
    await expect(page.locator("#scrape")).to_contain_text("scrape failed")
    await expect(page.locator('#canary tr[data-outcome="unreachable"]').first).to_contain_text(
        "connect"
    )
