"""The client's side of the close-code table (PROTOCOL.md) and its reconnect backoff.

Pure: ``Backoff.delay`` takes the attempt number and a random source; the client sleeps.
Full jitter (the AWS Architecture Blog's "Exponential Backoff And Jitter"): the delay is
uniform in ``[0, min(cap, base * 2**attempt)]``, so clients cut off together do not come
back together.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum

from core.protocol import CloseCode


class Next(Enum):
    STOP = "stop"
    RECONNECT = "reconnect"
    RECONNECT_NOW = "reconnect_now"
    REFRESH_TOKEN = "refresh_token"  # noqa: S105 - a decision name, not a secret


# Close codes after which reconnecting cannot help: a normal close, a forbidden user, and
# frames the client must fix (breaking RFC 6455, too large, not UTF-8).
STOP_CODES = frozenset(
    {
        CloseCode.NORMAL,
        CloseCode.PROTOCOL_ERROR,
        CloseCode.INVALID_DATA,
        CloseCode.MESSAGE_TOO_BIG,
        CloseCode.FORBIDDEN,
    }
)


def after_close(code: int | None) -> Next:
    """What the client does when its connection ends with ``code`` (None: no close frame)."""
    if code in STOP_CODES:
        return Next.STOP
    if code == CloseCode.SERVICE_RESTART:
        return Next.RECONNECT_NOW
    if code == CloseCode.TOKEN_EXPIRED:
        return Next.REFRESH_TOKEN
    # 1001, 1006 (no close frame), 1011, 4408, 4409, 4429 and anything unknown.
    return Next.RECONNECT


def after_refusal(status: int) -> Next:
    """What the client does when a reconnect's handshake is refused with HTTP ``status``."""
    if status == 401:
        return Next.REFRESH_TOKEN
    if status in (400, 403, 404):
        return Next.STOP
    # 429, 503 (not ready, draining) and 5xx: the server may come back.
    return Next.RECONNECT


@dataclass(frozen=True)
class Backoff:
    base_s: float = 0.25
    cap_s: float = 30.0
    max_attempts: int = 12

    def ceiling(self, attempt: int) -> float:
        """The largest delay before reconnect attempt ``attempt`` (0: the first)."""
        return min(self.cap_s, self.base_s * 2 ** min(attempt, 62))

    def delay(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0.0, self.ceiling(attempt))

    def exhausted(self, attempt: int) -> bool:
        return attempt >= self.max_attempts
