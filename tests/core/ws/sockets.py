"""A stand-in for Starlette's WebSocket that records what the server sends, for the tests of
the connection and delivery layers (no socket, no event loop tricks)."""

from __future__ import annotations

import json
from typing import Any


class RecordingSocket:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send_text(self, text: str) -> None:
        self.sent.append(json.loads(text))

    async def close(self, code: int) -> None:
        self.sent.append({"closed": code})
