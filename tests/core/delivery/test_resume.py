from core.delivery.resume import Inbound, ReplayMerge


def event(seq: int, thread: str = "t", epoch: str = "e1") -> dict:
    return {"thread_id": thread, "seq": seq, "epoch": epoch, "type": "agent_thinking"}


def seqs(events) -> list[int]:
    return [e["seq"] for e in events]


# --- the server's merge -------------------------------------------------------------------


def test_a_replay_after_last_seq_recovers():
    merge = ReplayMerge[str](2, epoch_matches=True)
    merged = merge.finish([(3, "c"), (4, "d")], complete=True)
    assert (merged.items, merged.recovered, merged.last_seq) == (["c", "d"], True, 4)


def test_live_events_held_during_the_replay_follow_it_without_duplicates():
    merge = ReplayMerge[str](0, epoch_matches=True)
    merge.hold(2, "b-live")
    merge.hold(3, "c-live")
    merged = merge.finish([(1, "a"), (2, "b")], complete=True)
    assert merged.items == ["a", "b", "c-live"]
    assert merged.recovered


def test_a_replay_that_starts_late_is_a_gap_and_does_not_recover():
    merge = ReplayMerge[str](0, epoch_matches=True)
    merged = merge.finish([(3, "c"), (4, "d")], complete=True)
    assert merged.items == ["c", "d"]
    assert not merged.recovered


def test_a_truncated_replay_does_not_recover():
    merged = ReplayMerge[str](0, epoch_matches=True).finish([(1, "a")], complete=False)
    assert not merged.recovered


def test_a_wrong_epoch_replays_nothing_but_still_passes_on_live_events():
    merge = ReplayMerge[str](5, epoch_matches=False)
    merge.hold(9, "live")
    merged = merge.finish([(6, "stale")], complete=True)
    assert (merged.items, merged.recovered) == (["live"], False)


def test_a_wrong_epoch_passes_on_live_events_below_the_clients_old_seq():
    merge = ReplayMerge[str](50, epoch_matches=False)
    merge.hold(3, "live")
    merged = merge.finish([], complete=True)
    merge.hold(4, "later")
    assert (merged.items, merged.recovered) == (["live"], False)
    assert merge.take_held(merged.last_seq) == ["later"]


def test_nothing_new_is_a_recovered_empty_resume():
    merged = ReplayMerge[str](7, epoch_matches=True).finish([], complete=True)
    assert (merged.items, merged.recovered, merged.last_seq) == ([], True, 7)


# --- the client's order -------------------------------------------------------------------


def test_an_event_already_handed_over_is_dropped_as_a_duplicate():
    inbound = Inbound()
    assert seqs(inbound.offer(event(1))) == [1]
    assert inbound.offer(event(1)) == []
    assert inbound.duplicates == 1
    assert inbound.ack_seq("t") == 1


def test_an_event_past_a_gap_waits_until_the_gap_is_filled():
    inbound = Inbound()
    inbound.offer(event(1))
    assert inbound.offer(event(3)) == []
    assert inbound.has_gap("t")
    assert inbound.ack_seq("t") == 1
    assert seqs(inbound.offer(event(2))) == [2, 3]
    assert not inbound.has_gap("t")


def test_a_client_that_cannot_fill_gaps_passes_them_on_but_never_a_duplicate():
    inbound = Inbound(hold_gaps=False)
    inbound.offer(event(1))
    assert seqs(inbound.offer(event(3))) == [3]
    assert inbound.offer(event(2)) == []


def test_the_first_event_of_an_unknown_thread_sets_its_starting_point():
    inbound = Inbound()
    assert seqs(inbound.offer(event(7))) == [7]
    assert inbound.resume_points() == [("t", "e1", 7)]


def test_a_followed_thread_without_events_resumes_from_zero_and_counts_from_one():
    inbound = Inbound()
    inbound.follow("t", "e1")
    assert inbound.resume_points() == [("t", "e1", 0)]
    assert inbound.offer(event(2)) == []  # 1 is missing: held
    assert seqs(inbound.offer(event(1))) == [1, 2]


def test_a_thread_whose_epoch_is_unknown_is_not_resumed():
    inbound = Inbound()
    inbound.follow("t")
    assert inbound.resume_points() == []


def test_a_new_epoch_restarts_the_thread_from_seq_one():
    inbound = Inbound()
    inbound.offer(event(5))
    inbound.rebase("t", "e2")
    assert inbound.ack_seq("t") == 0
    assert seqs(inbound.offer(event(1, epoch="e2"))) == [1]


def test_a_resent_event_of_the_old_epoch_does_not_take_the_thread_back_to_it():
    inbound = Inbound()
    for seq in (1, 2, 3):
        inbound.offer(event(seq))
    assert seqs(inbound.offer(event(1, epoch="e2"))) == [1]  # the log was lost: a new one
    assert inbound.offer(event(3)) == []  # a resend from the lost log
    assert seqs(inbound.offer(event(2, epoch="e2"))) == [2]
    assert inbound.offer(event(1, epoch="e2")) == []
    assert inbound.resume_points() == [("t", "e2", 2)]
    assert inbound.duplicates == 2


def test_the_servers_epoch_moves_the_thread_and_an_old_events_resend_is_dropped():
    inbound = Inbound()
    inbound.offer(event(4))
    inbound.follow("t", "e2")  # chat_accepted: the thread's log is e2 now
    assert inbound.offer(event(5)) == []
    assert seqs(inbound.offer(event(1, epoch="e2"))) == [1]


def test_threads_are_ordered_independently():
    inbound = Inbound()
    inbound.offer(event(1, thread="a"))
    assert seqs(inbound.offer(event(1, thread="b"))) == [1]
    assert (inbound.ack_seq("a"), inbound.ack_seq("b"), inbound.ack_seq("c")) == (1, 1, 0)


def test_live_events_held_while_the_replay_is_sent_come_after_what_was_sent():
    merge = ReplayMerge[str](0, epoch_matches=True)
    merged = merge.finish([(1, "a"), (2, "b")], complete=True)
    merge.hold(2, "b-live")  # a redelivery of what the replay already holds
    merge.hold(4, "d")
    merge.hold(3, "c")
    assert merged.items == ["a", "b"]
    assert merge.take_held(2) == ["c", "d"]
    assert merge.take_held(4) == []
