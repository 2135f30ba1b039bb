from core.delivery.window import AckWindow, Pending


def pending(seq: int, *, thread: str = "t", at: float = 0.0, **extra) -> Pending:
    fields = {"type": "agent_thinking", "run_id": "r", "user_id": "u"} | extra
    return Pending(thread_id=thread, seq=seq, emitted_at=at, due_at=at + 5, **fields)


def test_a_cumulative_ack_retires_every_event_up_to_its_seq_with_its_latency():
    window = AckWindow()
    for seq, kind in enumerate(["agent_started", "agent_thinking", "agent_completed"], start=1):
        window.record(pending(seq, at=10.0 + seq, type=kind))
    retired = window.ack("t", 2, now=14.0)
    assert [(r.seq, r.type, r.latency_s) for r in retired] == [
        (1, "agent_started", 3.0),
        (2, "agent_thinking", 2.0),
    ]
    assert window.pending_count() == 1


def test_an_event_is_retired_once_even_when_acked_twice():
    window = AckWindow()
    window.record(pending(1))
    assert len(window.ack("t", 1, now=1.0)) == 1
    assert window.ack("t", 1, now=2.0) == []


def test_acks_of_one_thread_do_not_touch_another():
    window = AckWindow()
    window.record(pending(1, thread="a"))
    window.record(pending(1, thread="b"))
    window.ack("a", 1, now=1.0)
    assert window.pending_count() == 1
    assert window.last_seq("b") == 1
    assert window.last_seq("a") == 0


def test_a_fully_acked_thread_is_forgotten_so_the_window_stays_the_size_of_what_is_pending():
    window = AckWindow()
    for thread in ("a", "b", "c"):
        window.record(pending(1, thread=thread))
        window.ack(thread, 1, now=1.0)
    assert window.thread_count() == 0


def test_overdue_events_come_out_oldest_deadline_first():
    window = AckWindow()
    window.record(pending(1, thread="late", at=3.0))
    window.record(pending(1, thread="early", at=1.0))
    window.record(pending(2, thread="early", at=9.0))
    assert [(e.thread_id, e.seq) for e in window.due(now=8.0)] == [("early", 1), ("late", 1)]


def test_a_given_up_event_leaves_the_window_with_its_reason_and_tool():
    window = AckWindow()
    entry = pending(1, type="tool_completed", tool="calculator")
    window.record(entry)
    retired = window.give_up(entry, now=30.0, reason="ack_timeout")
    assert (retired.reason, retired.tool, retired.latency_s) == ("ack_timeout", "calculator", 30.0)
    assert window.pending_count() == 0


def test_the_oldest_pending_event_is_the_first_recorded_still_unacked():
    window = AckWindow()
    window.record(pending(1, thread="a"))
    window.record(pending(1, thread="b"))
    window.record(pending(2, thread="a"))
    window.ack("a", 1, now=1.0)
    oldest = window.oldest()
    assert oldest is not None and (oldest.thread_id, oldest.seq) == ("b", 1)
    assert window.pending_count() == 2
    window.ack("b", 1, now=1.0)
    window.ack("a", 2, now=1.0)
    assert window.oldest() is None
