"""Token-bucket rate limiting, a pure class fed an injected clock."""

from __future__ import annotations

from collections.abc import Callable


class TokenBucket:
    """Allows ``rate_per_s`` frames a second on average with bursts up to ``burst``."""

    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float]) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be positive and burst at least 1")
        self._rate = rate_per_s
        self._burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()
        self.consecutive_refusals = 0

    def allow(self) -> bool:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        if self._tokens >= 1:
            self._tokens -= 1
            self.consecutive_refusals = 0
            return True
        self.consecutive_refusals += 1
        return False
