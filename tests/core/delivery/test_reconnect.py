import random

import pytest

from core.delivery.reconnect import Backoff, Next, after_close, after_refusal


@pytest.mark.parametrize(
    ("code", "next_step"),
    [
        (1000, Next.STOP),
        (4403, Next.STOP),
        (1009, Next.STOP),
        (1007, Next.STOP),
        (1002, Next.STOP),
        (1012, Next.RECONNECT_NOW),
        (4401, Next.REFRESH_TOKEN),
        (1001, Next.RECONNECT),
        (1006, Next.RECONNECT),
        (1011, Next.RECONNECT),
        (4408, Next.RECONNECT),
        (4409, Next.RECONNECT),
        (4429, Next.RECONNECT),
        (None, Next.RECONNECT),
    ],
)
def test_each_close_code_gets_what_the_protocol_table_says(code, next_step):
    assert after_close(code) is next_step


@pytest.mark.parametrize(
    ("status", "next_step"),
    [(401, Next.REFRESH_TOKEN), (403, Next.STOP), (400, Next.STOP), (503, Next.RECONNECT)],
)
def test_a_refused_reconnect_stops_only_when_retrying_cannot_help(status, next_step):
    assert after_refusal(status) is next_step


def test_the_backoff_ceiling_doubles_up_to_its_cap():
    backoff = Backoff(base_s=0.5, cap_s=4.0)
    assert [backoff.ceiling(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert backoff.ceiling(10_000) == 4.0


def test_full_jitter_spreads_delays_over_the_whole_range_below_the_ceiling():
    backoff = Backoff(base_s=1.0, cap_s=8.0)
    rng = random.Random(7)
    delays = [backoff.delay(3, rng) for _ in range(2000)]
    assert all(0.0 <= d <= 8.0 for d in delays)
    assert min(delays) < 0.5 and max(delays) > 7.5  # not "ceiling plus a little jitter"


def test_the_same_random_source_gives_the_same_delays():
    backoff = Backoff()
    assert [backoff.delay(n, random.Random(1)) for n in range(5)] == [
        backoff.delay(n, random.Random(1)) for n in range(5)
    ]


def test_attempts_run_out_after_the_budget():
    backoff = Backoff(max_attempts=3)
    assert [backoff.exhausted(n) for n in range(5)] == [False, False, False, True, True]
