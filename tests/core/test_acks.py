from core.acks import AckLedger


def test_a_cumulative_ack_retires_every_event_up_to_its_seq_with_latency():
    ledger = AckLedger()
    for seq, kind in enumerate(["agent_started", "agent_thinking", "agent_completed"], start=1):
        ledger.record("t", seq, kind, "r", now=10.0 + seq)
    retired = ledger.ack("t", 2, now=14.0)
    assert [(r.seq, r.type, r.latency_s) for r in retired] == [
        (1, "agent_started", 3.0),
        (2, "agent_thinking", 2.0),
    ]
    assert ledger.pending_count() == 1


def test_an_event_is_retired_once_even_when_acked_twice():
    ledger = AckLedger()
    ledger.record("t", 1, "agent_started", "r", now=0.0)
    assert len(ledger.ack("t", 1, now=1.0)) == 1
    assert ledger.ack("t", 1, now=2.0) == []


def test_acks_of_one_thread_do_not_touch_another():
    ledger = AckLedger()
    ledger.record("a", 1, "agent_started", "r1", now=0.0)
    ledger.record("b", 1, "agent_started", "r2", now=0.0)
    ledger.ack("a", 1, now=1.0)
    assert ledger.pending_count() == 1
    assert ledger.last_seq("b") == 1


def test_events_unconfirmed_past_the_limit_expire_and_say_whether_they_count():
    ledger = AckLedger()
    ledger.record("t", 1, "agent_started", "r", now=0.0)
    ledger.record("t", 2, "agent_thinking", "r", now=5.0, counted=False)
    expired = ledger.expire(now=8.0, max_age_s=6.0)
    assert [(e.seq, e.run_id, e.counted) for e in expired] == [(1, "r", True)]
    assert [e.counted for e in ledger.expire(now=20.0, max_age_s=6.0)] == [False]
    assert ledger.pending_count() == 0
