"""The backend's recent run traces (GET /admin/traces), kept for the status page.

On the embedded default the backend keeps its spans in memory; this is where they are seen.
The endpoint is for operators, so the sidecar reads it with its own identity (the canary's
token, which carries the operator role, as the drain needs). A failed read keeps what was
last read and says why.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from core.telemetry.logging import get_logger
from sidecar import SidecarError

log = get_logger(__name__)

TRACES_PATH = "/admin/traces"
SHOWN_RUNS = 10


class TracesUnavailable(SidecarError):
    """The backend's traces could not be read."""


class TracesLoop:
    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        tokens: Callable[[], str],
        *,
        timeout_s: float,
        clock: Callable[[], float],
    ) -> None:
        self._http = http
        self._url = base_url.rstrip("/") + TRACES_PATH
        self._tokens = tokens
        self._timeout_s = timeout_s
        self._clock = clock
        self.last_read: dict[str, Any] = {"at": None, "ok": None, "error": None}
        self.kept: bool | None = None
        self.runs: list[dict[str, Any]] = []

    async def once(self) -> None:
        now = self._clock()
        try:
            self.kept, self.runs = await self._read()
        except TracesUnavailable as exc:
            self.last_read = {"at": now, "ok": False, "error": str(exc)}
            log.warning("traces_read_failed", error=str(exc))
        else:
            self.last_read = {"at": now, "ok": True, "error": None}

    async def _read(self) -> tuple[bool, list[dict[str, Any]]]:
        try:
            response = await self._http.get(
                self._url,
                params={"limit": SHOWN_RUNS},
                headers={"Authorization": f"Bearer {self._tokens()}"},
                timeout=self._timeout_s,
            )
        except httpx.HTTPError as exc:
            raise TracesUnavailable(f"{type(exc).__name__} ({exc})") from exc
        if response.status_code != 200:
            raise TracesUnavailable(f"HTTP {response.status_code}")
        try:
            body = response.json()
            return bool(body["kept"]), list(body["runs"])
        except (ValueError, KeyError, TypeError) as exc:
            raise TracesUnavailable(f"unreadable answer ({type(exc).__name__})") from exc

    def as_dict(self) -> dict[str, Any]:
        return {"enabled": True, **self.last_read, "kept": self.kept, "runs": self.runs}
