"""Properties of each pure delivery class on its own (the whole path is in
test_exactly_once.py)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from core.delivery.redelivery import GiveUp, Redeliver, Redelivery, RetrySchedule
from core.delivery.resume import Inbound
from core.delivery.window import AckWindow


@st.composite
def arrivals(draw) -> tuple[int, list[int]]:
    """Seqs 1..n, each at least once, in any order, some more than once."""
    n = draw(st.integers(min_value=1, max_value=40))
    extra = draw(st.lists(st.integers(min_value=1, max_value=n), max_size=40))
    return n, draw(st.permutations(list(range(1, n + 1)) + extra))


@settings(max_examples=300, deadline=None)
@given(arrivals())
def test_whatever_the_order_and_repeats_the_application_gets_each_seq_once_in_order(case):
    n, order = case
    inbound = Inbound()
    inbound.follow("t", "e1")
    inbound.resume_points()  # a new thread: it counts from seq 1
    handed: list[int] = []
    for seq in order:
        handed += [e["seq"] for e in inbound.offer({"thread_id": "t", "seq": seq, "epoch": "e1"})]
        assert inbound.ack_seq("t") == (handed[-1] if handed else 0)  # acks never run ahead
    assert handed == list(range(1, n + 1))
    assert inbound.duplicates == len(order) - n


@st.composite
def epoch_changes(draw) -> tuple[int, int, bool, list[tuple[str, int]]]:
    """A thread whose log e1 is lost after ``before`` events and starts again as e2 (the
    client learns it from ``resumed`` or from e2's first event), with resends of e1's
    events arriving anywhere among e2's."""
    before = draw(st.integers(min_value=1, max_value=10))
    after = draw(st.integers(min_value=1, max_value=10))
    by_resume = draw(st.booleans())
    stream = [("e2", seq) for seq in range(1, after + 1)]
    for seq in draw(st.lists(st.integers(min_value=1, max_value=before), max_size=10)):
        stream.insert(draw(st.integers(min_value=0, max_value=len(stream))), ("e1", seq))
    return before, after, by_resume, stream


@settings(max_examples=300, deadline=None)
@given(epoch_changes(), st.booleans())
def test_once_the_epoch_moved_on_old_resends_never_reach_the_application(case, hold_gaps):
    before, after, by_resume, stream = case
    inbound = Inbound(hold_gaps=hold_gaps)
    inbound.follow("t", "e1")
    inbound.resume_points()
    handed: list[tuple[object, object]] = []
    arrivals = [("e1", seq) for seq in range(1, before + 1)] + (["resumed"] if by_resume else [])
    for arrival in arrivals + stream:
        if arrival == "resumed":
            inbound.rebase("t", "e2")
            continue
        epoch, seq = arrival
        ready = inbound.offer({"thread_id": "t", "seq": seq, "epoch": epoch})
        handed += [(e["epoch"], e["seq"]) for e in ready]
    expected = [("e1", seq) for seq in range(1, before + 1)]
    assert handed == expected + [("e2", seq) for seq in range(1, after + 1)]
    assert inbound.resume_points() == [("t", "e2", after)]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("emit"), st.booleans()),
            st.tuples(st.just("ack"), st.integers(min_value=0, max_value=30)),
            st.tuples(st.just("tick"), st.floats(min_value=0, max_value=5)),
        ),
        max_size=80,
    ),
    st.integers(min_value=0, max_value=4),
)
def test_every_event_leaves_the_window_once_acked_or_given_up_within_its_budget(steps, budget):
    redelivery = Redelivery(AckWindow(), RetrySchedule(1.0, budget, 2.0))
    now, emitted, left = 0.0, 0, []
    resends: dict[int, int] = {}
    for kind, value in steps:
        if kind == "emit":
            emitted += 1
            redelivery.sent(
                thread_id="t",
                seq=emitted,
                event_type="agent_thinking",
                run_id="r",
                user_id="u",
                now=now,
                reached=value,
            )
        elif kind == "ack":
            left += [r.seq for r in redelivery.acked("t", min(value, emitted), now)]
        else:
            now += value
            for decision in redelivery.tick(now):
                if isinstance(decision, Redeliver):
                    resends[decision.entry.seq] = resends.get(decision.entry.seq, 0) + 1
                elif isinstance(decision, GiveUp):
                    left.append(decision.retired.seq)
                    assert decision.retired.redeliveries == budget
    now += RetrySchedule(1.0, budget, 2.0).give_up_after() + 1
    for _ in range(budget + 1):  # each remaining resend, then the give-up
        for decision in redelivery.tick(now):
            if isinstance(decision, GiveUp):
                left.append(decision.retired.seq)
        now += RetrySchedule(1.0, budget, 2.0).timeout(budget) + 1
    assert sorted(left) == list(range(1, emitted + 1))
    assert all(count <= budget for count in resends.values())
    assert redelivery.window.pending_count() == 0
