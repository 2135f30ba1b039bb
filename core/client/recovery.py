"""Coming back after a lost connection, apart from reading the socket: ``Recovery``
reconnects with exponential backoff and full jitter (at once after 1012, with a fresh
token after 4401), resumes every followed thread from the last seq handed over, one at a
time, and when a resume cannot recover, backfills the thread over REST, in a task of its
own, so the socket goes on being read (and pings answered) during a long backfill.

It acts on the session through a narrow ``Session`` surface (its ``Inbound``, sending a
frame, delivering events); ``VigilClient`` owns the socket and feeds it the resume answers.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from core.client.backfill import stored_events
from core.client.handshake import Endpoint, HandshakeRefused, handshake
from core.client.pending import ResumeQueue
from core.delivery.reconnect import Backoff, Next, after_refusal
from core.delivery.resume import Inbound

Frame = dict[str, Any]


@dataclass(frozen=True)
class Reconnect:
    """How the client comes back. ``rng`` and ``sleep`` are injectable for tests;
    ``token`` gives a fresh token after 4401 (without it, 4401 ends the client)."""

    backoff: Backoff = field(default_factory=Backoff)
    rng: random.Random = field(default_factory=random.Random)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    token: Callable[[], str] | None = None
    # A resume refused as rate_limited (or unavailable) is sent again after this long.
    resume_retry_s: float = 0.5
    # How REST backfills reach the server: httpx's own transport (None), or a test's fake.
    http_transport: httpx.AsyncBaseTransport | None = None
    # A gap no redelivery has filled after this long (an event lost on its way between
    # replicas: only the emitting replica resends, to its own connections) is healed by
    # resuming the thread on this connection. Longer than the server's ack timeout (5 s).
    gap_timeout_s: float = 10.0


class Session(Protocol):
    """What ``Recovery`` needs of the client."""

    inbound: Inbound

    async def send(self, frame: Frame) -> None: ...

    async def deliver(self, events: list[Frame]) -> None: ...


class Recovery:
    def __init__(self, session: Session, endpoint: Endpoint, policy: Reconnect) -> None:
        self._session = session
        self._endpoint = endpoint
        self._policy = policy
        self._resumes = ResumeQueue()
        self._resume_retry: asyncio.Task[None] | None = None
        # The backfill under way per thread (a later one for the same thread waits for it).
        self._backfills: dict[str, asyncio.Task[None]] = {}
        # Per thread with a gap, the wait before its resume heals it.
        self._gap_watches: dict[str, asyncio.Task[None]] = {}
        self.gaps_healed = 0
        # What the resumes answered, how often the client came back, what REST brought.
        self.resumed: list[Frame] = []
        self.reconnects = 0
        self.backfilled = 0
        self.backfill_errors: list[str] = []

    @property
    def resume_errors(self) -> list[Frame]:
        return self._resumes.errors

    @property
    def resume_retries(self) -> int:
        return self._resumes.retries

    def token(self) -> str:
        if self._policy.token is not None:
            return self._policy.token()
        return self._endpoint.token

    async def close(self) -> None:
        tasks = [*self._backfills.values(), *self._gap_watches.values()]
        if self._resume_retry is not None:
            tasks.append(self._resume_retry)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- reconnecting --------------------------------------------------------------------

    async def reconnect(
        self, decision: Next, closing: Callable[[], bool]
    ) -> tuple[ClientConnection, Frame] | None:
        """A new connection and its ``connection_ready``; None when the close code or a
        refusal says stop, or the backoff is exhausted."""
        policy = self._policy
        if decision is Next.STOP or (decision is Next.REFRESH_TOKEN and policy.token is None):
            return None
        attempt = 0
        at_once = decision in (Next.RECONNECT_NOW, Next.REFRESH_TOKEN)
        while not closing():
            if not (at_once and attempt == 0):
                if policy.backoff.exhausted(attempt):
                    return None
                await policy.sleep(policy.backoff.delay(attempt, policy.rng))
            attempt += 1
            try:
                connection = await handshake(self._endpoint, self.token())
            except HandshakeRefused as refusal:
                refused = after_refusal(refusal.status)
                if refused is Next.STOP or (refused is Next.REFRESH_TOKEN and not policy.token):
                    return None
                continue
            except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed, ConnectionError):
                continue
            self.reconnects += 1
            return connection
        return None

    # --- resuming ------------------------------------------------------------------------

    async def resume_all(self) -> None:
        """Resume every followed thread, one after another (on the new connection)."""
        if self._resume_retry is not None:
            self._resume_retry.cancel()
        inbound = self._session.inbound
        self._resumes.restart(thread_id for thread_id, _, _ in inbound.resume_points())
        await self._resume_next()

    def watch_gap(self, thread_id: str) -> None:
        """The thread holds events past a gap: unless a redelivery fills it first, resume
        the thread after ``gap_timeout_s`` (the server replays what is missing)."""
        if thread_id in self._gap_watches:
            return
        task = asyncio.create_task(self._heal_gap(thread_id))
        self._gap_watches[thread_id] = task
        task.add_done_callback(lambda _: self._gap_watches.pop(thread_id, None))

    async def _heal_gap(self, thread_id: str) -> None:
        # A real wait, not the injected one: redeliveries come in real time.
        await asyncio.sleep(self._policy.gap_timeout_s)
        if not self._session.inbound.has_gap(thread_id):
            return
        self.gaps_healed += 1
        retry_pending = self._resume_retry is not None and not self._resume_retry.done()
        if self._resumes.add(thread_id) and not retry_pending:
            await self._resume_next()

    def answers(self, frame: Frame) -> bool:
        """Whether ``frame`` answers the resume in flight."""
        return self._resumes.answers(frame)

    async def on_answer(self, frame: Frame) -> None:
        if frame["type"] == "resumed":
            await self._on_resumed(frame)
        elif self._resumes.refused(frame):
            # Over the frame budget, or a database hiccup: the same thread a little later,
            # reading going on meanwhile.
            self._resume_retry = asyncio.create_task(
                self._resume_later(self._policy.resume_retry_s)
            )
            return
        await self._resume_next()

    async def _resume_later(self, delay_s: float) -> None:
        # A real wait, not the injected one: the server's budget refills in real time.
        await asyncio.sleep(delay_s)
        await self._resume_next()

    async def _resume_next(self) -> None:
        """Resume the next followed thread from the last seq handed over (read now, not at
        reconnect time: the thread may have moved on meanwhile)."""
        thread_id = self._resumes.next()
        if thread_id is None:
            return
        cursor = self._session.inbound.threads[thread_id]
        await self._session.send(
            {
                "type": "resume",
                "thread_id": thread_id,
                "epoch": cursor.epoch,
                "last_seq": cursor.resume_from,
            }
        )

    # --- backfilling ---------------------------------------------------------------------

    async def _on_resumed(self, frame: Frame) -> None:
        thread_id = frame["thread_id"]
        inbound = self._session.inbound
        self.resumed.append(frame)
        if frame.get("epoch"):
            inbound.rebase(thread_id, frame["epoch"])
        if not frame.get("recovered") or inbound.has_gap(thread_id):
            self._start_backfill(thread_id)

    def _start_backfill(self, thread_id: str) -> None:
        """Backfill in a task: the socket goes on being read (pings answered, live events
        held past the gap) meanwhile. The thread's ``Inbound`` cursor keeps its events in
        order, whichever way they come; one thread's backfills run one after another."""
        previous = self._backfills.get(thread_id)
        task = asyncio.create_task(self._backfill_after(previous, thread_id))
        self._backfills[thread_id] = task

        def done(finished: asyncio.Task[None]) -> None:
            if self._backfills.get(thread_id) is finished:
                del self._backfills[thread_id]

        task.add_done_callback(done)

    async def _backfill_after(self, previous: asyncio.Task[None] | None, thread_id: str) -> None:
        if previous is not None:
            # It never raises: its failures are recorded in ``backfill_errors``.
            await asyncio.wait({previous})
        try:
            await self._backfill(thread_id)
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            # The gap stays held; the next resume (or a later backfill) fills it.
            self.backfill_errors.append(f"{thread_id}: {type(exc).__name__}: {exc}")

    async def _backfill(self, thread_id: str) -> None:
        """Fetch the thread's stored events after the last one handed over (the source of
        truth when a resume cannot recover)."""
        after = self._session.inbound.ack_seq(thread_id)
        timeout = self._endpoint.open_timeout
        pages = stored_events(
            self._endpoint.http_url,
            self.token(),
            thread_id,
            after,
            timeout=timeout,
            transport=self._policy.http_transport,
        )
        async for events in pages:
            self.backfilled += len(events)
            await self._session.deliver(events)
