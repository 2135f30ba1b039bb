"""Simulated chat users: each opens one connection with the project's client and runs chats
on one thread, back to back or after a think time, reporting what it sees to a ``Recorder``.

A user stops after its runs, at the deadline, or when its connection is lost (counted as an
error of kind ``connection_lost``); it never retries behind the recorder's back.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake

from core.client import ChatRefused, HandshakeRefused, VigilClient
from core.loadgen.stats import Recorder, Summary, emitted_at

DEFAULT_TEXT = "What is 17 * 23?"


@dataclass(frozen=True)
class LoadSpec:
    ws_url: str
    users: int
    runs_per_user: int
    duration_s: float | None = None
    text: str = DEFAULT_TEXT
    run_timeout_s: float = 30.0
    # Mean pause before each of a user's chats (drawn uniformly from 0 to twice this): a
    # user reading the answer, not a client firing back to back. 0 saturates the backend.
    think_s: float = 0.0
    # Handshakes in flight at once: a thousand users do not all knock in the same millisecond.
    connect_concurrency: int = 50
    user_prefix: str = "loadgen"


async def run_load(
    spec: LoadSpec,
    token_for: Callable[[str], str],
    recorder: Recorder,
    *,
    on_run: Callable[[], None] | None = None,
) -> Summary:
    """Run ``spec.users`` users concurrently; return the summary over the whole run."""
    gate = asyncio.Semaphore(spec.connect_concurrency)
    started = time.monotonic()
    deadline = None if spec.duration_s is None else started + spec.duration_s
    user_ids = [f"{spec.user_prefix}-{i}" for i in range(spec.users)]
    await asyncio.gather(
        *(
            _user(
                spec,
                user_id=uid,
                token=token_for(uid),
                recorder=recorder,
                gate=gate,
                deadline=deadline,
                on_run=on_run,
            )
            for uid in user_ids
        )
    )
    return recorder.summary(spec.users, time.monotonic() - started)


async def _user(
    spec: LoadSpec,
    *,
    user_id: str,
    token: str,
    recorder: Recorder,
    gate: asyncio.Semaphore,
    deadline: float | None,
    on_run: Callable[[], None] | None,
) -> None:
    try:
        async with gate:
            client = await VigilClient.open(spec.ws_url, token, open_timeout=spec.run_timeout_s)
    except HandshakeRefused as refusal:
        recorder.error(f"handshake_refused:{refusal.reason}")
        return
    except (OSError, TimeoutError, InvalidHandshake, ConnectionError) as exc:
        recorder.error(f"connect_failed:{type(exc).__name__}")
        return
    try:
        thread_id: str | None = None
        for _ in range(spec.runs_per_user):
            if spec.think_s:
                pause = random.uniform(0, 2 * spec.think_s)  # noqa: S311 - a load's shape
                if deadline is not None:
                    pause = min(pause, max(0.0, deadline - time.monotonic()))
                await asyncio.sleep(pause)
            if deadline is not None and time.monotonic() >= deadline:
                return
            try:
                thread_id = await _one_run(client, spec, thread_id, recorder)
            except ChatRefused as refused:
                recorder.error(f"chat_refused:{refused.code}")
            except TimeoutError:
                recorder.error("timeout")
                return
            except (ConnectionError, ConnectionClosed):
                recorder.error("connection_lost")
                return
            finally:
                if on_run is not None:
                    on_run()
    finally:
        await client.close()


async def _one_run(
    client: VigilClient, spec: LoadSpec, thread_id: str | None, recorder: Recorder
) -> str:
    """One chat and its events up to ``agent_completed``; returns the thread id. The
    client matches the chat's answer by its id, so no other frame is taken for it."""
    began = time.monotonic()

    def received(event: dict[str, Any]) -> None:
        recorder.event_received(emitted_at(event["ts"]), time.time())

    result = await client.run(spec.text, thread_id, timeout=spec.run_timeout_s, on_event=received)
    error_reason = next(
        (str(e["data"].get("reason")) for e in result.events if e["type"] == "agent_error"),
        None,
    )
    status = str(result.completed["data"].get("status"))
    recorder.run_finished(time.monotonic() - began, status, error_reason)
    return str(result.accepted["thread_id"])
