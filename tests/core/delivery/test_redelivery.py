import pytest

from core.delivery.redelivery import GiveUp, Redeliver, Redelivery, RetrySchedule
from core.delivery.window import AckWindow


def make(max_redeliveries: int = 2, backoff: float = 2.0) -> Redelivery:
    return Redelivery(AckWindow(), RetrySchedule(1.0, max_redeliveries, backoff))


def send(redelivery: Redelivery, seq: int, now: float = 0.0, reached: bool = True, **extra):
    return redelivery.sent(
        thread_id="t",
        seq=seq,
        event_type="agent_thinking",
        run_id="r",
        user_id="u",
        now=now,
        reached=reached,
        **extra,
    )


def kinds(decisions) -> list[tuple[str, int]]:
    return [
        ("resend", d.entry.seq) if isinstance(d, Redeliver) else ("give_up", d.retired.seq)
        for d in decisions
    ]


def test_nothing_is_resent_before_the_ack_timeout():
    redelivery = make()
    send(redelivery, 1)
    assert redelivery.tick(0.99) == []


def test_an_unacked_event_is_resent_with_a_growing_wait_then_given_up():
    redelivery = make(max_redeliveries=2, backoff=2.0)
    send(redelivery, 1)
    assert kinds(redelivery.tick(1.0)) == [("resend", 1)]
    assert redelivery.tick(2.9) == []  # the second wait is 2 s
    assert kinds(redelivery.tick(3.0)) == [("resend", 1)]
    assert redelivery.tick(6.9) == []  # the third wait is 4 s
    [give_up] = redelivery.tick(7.0)
    assert isinstance(give_up, GiveUp)
    assert (give_up.retired.reason, give_up.retired.redeliveries) == ("ack_timeout", 2)
    assert redelivery.window.pending_count() == 0


def test_the_give_up_time_is_the_sum_of_the_waits():
    assert RetrySchedule(5.0, 3, 2.0).give_up_after() == 5 + 10 + 20 + 40
    assert RetrySchedule(5.0, 3, 1.0).give_up_after() == 20


def test_an_ack_before_the_deadline_cancels_every_resend():
    redelivery = make()
    send(redelivery, 1)
    send(redelivery, 2)
    redelivery.acked("t", 2, now=0.5)
    assert redelivery.tick(100.0) == []


def test_an_ack_after_a_resend_retires_the_event_with_its_resend_count():
    redelivery = make()
    send(redelivery, 1)
    redelivery.tick(1.0)
    [retired] = redelivery.acked("t", 1, now=1.5)
    assert (retired.redeliveries, retired.latency_s) == (1, 1.5)


def test_an_event_no_connection_ever_received_is_given_up_as_no_connection():
    redelivery = make(max_redeliveries=1)
    entry = send(redelivery, 1, reached=False)
    [resend] = redelivery.tick(1.0)
    redelivery.redelivered(entry, reached=False)
    [give_up] = redelivery.tick(10.0)
    assert isinstance(resend, Redeliver) and isinstance(give_up, GiveUp)
    assert give_up.retired.reason == "no_connection"


def test_an_event_a_resend_reached_is_given_up_as_ack_timeout():
    redelivery = make(max_redeliveries=1)
    entry = send(redelivery, 1, reached=False)
    redelivery.tick(1.0)
    redelivery.redelivered(entry, reached=True)
    [give_up] = redelivery.tick(10.0)
    assert isinstance(give_up, GiveUp) and give_up.retired.reason == "ack_timeout"


def test_a_zero_budget_gives_up_at_the_first_deadline():
    redelivery = make(max_redeliveries=0)
    send(redelivery, 1)
    assert kinds(redelivery.tick(1.0)) == [("give_up", 1)]


@pytest.mark.parametrize(
    ("timeout", "budget", "backoff"), [(0.0, 1, 2.0), (1.0, -1, 2.0), (1.0, 1, 0.5)]
)
def test_a_schedule_that_makes_no_sense_is_refused(timeout, budget, backoff):
    with pytest.raises(ValueError):
        RetrySchedule(timeout, budget, backoff)


def test_past_the_window_bound_the_oldest_events_are_given_up_as_window_full():
    redelivery = Redelivery(AckWindow(), RetrySchedule(1.0), max_pending=2)
    for seq in (1, 2, 3):
        send(redelivery, seq, now=float(seq))
    [overflow] = redelivery.overflow(now=3.0)
    assert (overflow.retired.seq, overflow.retired.reason) == (1, "window_full")
    assert [entry.seq for entry in redelivery.window] == [2, 3]
    assert redelivery.overflow(now=3.0) == []


def test_a_window_bound_below_one_is_refused():
    with pytest.raises(ValueError):
        Redelivery(AckWindow(), RetrySchedule(1.0), max_pending=0)
