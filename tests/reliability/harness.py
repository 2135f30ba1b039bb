"""What the reliability tests share: a backend process of their own, a raw probing client
and a bystander user who keeps chatting while the tests misbehave."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from core.client import VigilClient
from tests.fixtures.servers import BackendProcess, spawn_backend, stop_backend


@contextmanager
def own_backend(template: Path, directory: Path, **env: str) -> Iterator[BackendProcess]:
    path = directory / "vigil.db"
    shutil.copy(template, path)
    backend = spawn_backend(
        f"sqlite+aiosqlite:///{path}", env={"VIGIL_LOG_LEVEL": "warning", **env}
    )
    try:
        yield backend
    finally:
        stop_backend(backend)


def alive(backend: BackendProcess) -> bool:
    if backend.process.poll() is not None:
        return False
    return httpx.get(f"{backend.base_url}/healthz", timeout=5).status_code == 200


@dataclass
class Outcome:
    """What the server answered to one probe: an error frame, another frame, or a close."""

    frame: dict[str, Any] | None = None
    close_code: int | None = None
    closed: bool = False
    timed_out: bool = False


class Prober:
    """A raw connection (websockets' sync client) that sends anything, answers pings, and
    reconnects when the server closes it."""

    def __init__(self, backend: BackendProcess, user: str) -> None:
        self._backend = backend
        self._user = user
        self._ws: ClientConnection | None = None
        self.reconnects = 0

    def _connection(self) -> ClientConnection:
        if self._ws is None:
            token = self._backend.token(self._user)
            self._ws = connect(
                self._backend.ws_url,
                subprotocols=["vigil.v1", f"bearer.{token}"],  # type: ignore[list-item]
                max_size=2**22,
                ping_interval=None,
                open_timeout=10,
            ).__enter__()  # closed by ``close``, as a ``with`` block would
            ready = json.loads(self._ws.recv(timeout=10))
            assert ready["type"] == "connection_ready", ready
        return self._ws

    def probe(self, payload: str | bytes, *, text: bool | None = None) -> Outcome:
        ws = self._connection()
        try:
            ws.send(payload, text=text)
            while True:
                frame = json.loads(ws.recv(timeout=10))
                if frame.get("type") == "ping":
                    ws.send(json.dumps({"type": "pong", "ts": frame["ts"]}))
                    continue
                return Outcome(frame=frame)
        except ConnectionClosed as closed:
            self.close()
            return Outcome(closed=True, close_code=closed.rcvd.code if closed.rcvd else None)
        except TimeoutError:
            # No answer: start afresh so a late answer cannot pass for the next probe's.
            self.close()
            return Outcome(timed_out=True)

    def close(self) -> None:
        if self._ws is not None:
            self._ws.close()
            self._ws = None
            self.reconnects += 1


@dataclass
class Bystander:
    """Another user chatting in a thread of its own while the test runs; every run it saw."""

    backend: BackendProcess
    user: str = "bystander"
    runs: list[list[dict[str, Any]]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    first_run: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Bystander:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._chat()), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=60)

    async def _chat(self) -> None:
        try:
            token = self.backend.token(self.user)
            async with VigilClient.connect(self.backend.ws_url, token) as client:
                thread_id = None
                while not self._stop.is_set():
                    result = await client.run("What is 6 * 7?", thread_id, timeout=30)
                    thread_id = result.accepted["thread_id"]
                    self.runs.append(result.events)
                    self.first_run.set()
        except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
            self.failures.append(f"{type(exc).__name__}: {exc}")
