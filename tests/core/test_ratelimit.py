import pytest

from core.ratelimit import TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_allowed_then_refused_until_tokens_refill():
    clock = FakeClock()
    bucket = TokenBucket(rate_per_s=2, burst=3, clock=clock)
    assert [bucket.allow() for _ in range(4)] == [True, True, True, False]
    assert bucket.consecutive_refusals == 1
    clock.now = 0.5
    assert bucket.allow()
    assert bucket.consecutive_refusals == 0


def test_tokens_never_exceed_the_burst_after_a_long_pause():
    clock = FakeClock()
    bucket = TokenBucket(rate_per_s=10, burst=2, clock=clock)
    clock.now = 1000.0
    assert [bucket.allow() for _ in range(3)] == [True, True, False]


def test_a_nonsensical_limit_is_refused():
    with pytest.raises(ValueError):
        TokenBucket(rate_per_s=0, burst=1, clock=FakeClock())
