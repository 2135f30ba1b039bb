"""The model provider's circuit breaker: a pure state machine fed outcomes and a clock.

::

    closed --(failure_threshold consecutive failures)--> open
    open --(reset_timeout_s elapsed)--> half_open
    half_open --(the one trial call succeeds)--> closed
    half_open --(the trial call fails)--> open (the timer starts again)

In ``half_open`` exactly one caller at a time wins ``allow()``: the trial. A trial whose
outcome is never recorded (its run was cancelled, say) expires after ``reset_timeout_s``,
so a lost trial cannot hold the circuit half open for ever.

Outcomes reported while the circuit is open come from calls that started before it opened;
they change nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

CircuitState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(
        self, failure_threshold: int, reset_timeout_s: float, clock: Callable[[], float]
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if reset_timeout_s <= 0:
            raise ValueError("reset_timeout_s must be positive")
        self._threshold = failure_threshold
        self._reset_timeout_s = reset_timeout_s
        self._clock = clock
        self._consecutive_failures = 0
        self._opened_at: float | None = None
        self._trial_started_at: float | None = None

    @property
    def state(self) -> CircuitState:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at < self._reset_timeout_s:
            return "open"
        return "half_open"

    @property
    def consecutive_failures(self) -> int:
        return self._consecutive_failures

    def allow(self) -> bool:
        """May a call go to the provider now? In ``half_open`` this claims the one trial."""
        state = self.state
        if state == "closed":
            return True
        if state == "open":
            return False
        now = self._clock()
        trial_running = (
            self._trial_started_at is not None
            and now - self._trial_started_at < self._reset_timeout_s
        )
        if trial_running:
            return False
        self._trial_started_at = now
        return True

    def record_success(self) -> None:
        if self.state == "open":
            return
        self._consecutive_failures = 0
        self._opened_at = None
        self._trial_started_at = None

    def record_failure(self) -> None:
        state = self.state
        if state == "open":
            return
        if state == "half_open":
            self._open()
            return
        self._consecutive_failures += 1
        if self._consecutive_failures >= self._threshold:
            self._open()

    def retry_after(self) -> float:
        """Seconds until the circuit lets a trial call through (0 when not open)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._reset_timeout_s - (self._clock() - self._opened_at))

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._trial_started_at = None
