"""Server pings: a ``ping`` every interval, the ``pong`` round trip measured, and a
connection that stops answering closed with 4408 so its resources are freed.

Each ping is a timer callback on the event loop, not a task asleep between pings: an idle
connection holds one timer handle instead of a task, its coroutine and its sleep."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import Histogram

from core.protocol import CloseCode, Ping
from core.ws.connection import Connection

MISSED_PONGS_BEFORE_CLOSE = 2


class Heartbeat:
    def __init__(self, connection: Connection, interval_s: float, rtt: Histogram) -> None:
        self._connection = connection
        self._interval_s = interval_s
        self._rtt = rtt
        self._outstanding: dict[float, float] = {}
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """The first ping goes out one interval from now (call on the event loop)."""
        self._timer = asyncio.get_running_loop().call_later(self._interval_s, self._beat)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _beat(self) -> None:
        self._timer = None
        if self._connection.close_code is not None:
            return
        if len(self._outstanding) >= MISSED_PONGS_BEFORE_CLOSE:
            self._connection.request_close(CloseCode.HEARTBEAT_TIMEOUT)
            return
        ts = round(time.time(), 6)
        self._outstanding[ts] = time.perf_counter()
        self._connection.send_frame(Ping(ts=ts))
        self.start()

    def pong(self, ts: object) -> None:
        if not isinstance(ts, int | float):
            return
        sent = self._outstanding.pop(float(ts), None)
        if sent is not None:
            self._rtt.observe(time.perf_counter() - sent)
            # An answered ping proves the peer is alive; older unanswered ones don't count.
            self._outstanding = {k: v for k, v in self._outstanding.items() if k > ts}
