"""Reading a thread's stored events over REST: the source of truth when a resume cannot
recover (``GET /api/threads/{id}/events?after_seq=N&limit=M``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

PAGE = 1000


async def stored_events(
    http_url: str,
    token: str,
    thread_id: str,
    after_seq: int,
    *,
    timeout: float = 10.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[list[dict[str, Any]]]:
    """Pages of the thread's events after ``after_seq``, in seq order, until the end.
    Raises ``httpx.HTTPError`` (404 for a thread that is not the caller's). ``transport``:
    httpx's own (None), or a fake such as ``httpx.MockTransport`` in tests."""
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{http_url}/api/threads/{thread_id}/events"
    async with httpx.AsyncClient(headers=headers, timeout=timeout, transport=transport) as http:
        while True:
            response = await http.get(url, params={"after_seq": after_seq, "limit": PAGE})
            response.raise_for_status()
            body = response.json()
            events: list[dict[str, Any]] = body["events"]
            if events:
                yield events
            if len(events) < PAGE:
                return
            after_seq = int(body["next_after_seq"])
