from core.client.pending import PendingChats, ResumeQueue


async def test_a_chat_gets_the_answer_that_carries_its_id_and_nothing_else():
    chats = PendingChats()
    answer = chats.open("c1", {"type": "chat", "id": "c1"})
    assert chats.answer({"type": "chat_accepted", "id": "other", "thread_id": "t"}) is False
    assert chats.answer({"type": "error", "code": "invalid_json", "ref": None}) is False
    assert chats.answer({"type": "chat_accepted", "id": "c1", "thread_id": "t"}) is True
    assert (await answer)["thread_id"] == "t"


async def test_a_second_answer_to_a_chat_sent_twice_is_swallowed():
    chats = PendingChats()
    chats.open("c1", {"type": "chat", "id": "c1"})
    chats.answer({"type": "chat_accepted", "id": "c1", "thread_id": "t"})
    chats.close("c1")
    assert chats.answer({"type": "chat_accepted", "id": "c1", "thread_id": "t"}) is True


async def test_only_chats_still_waiting_are_sent_again():
    chats = PendingChats()
    chats.open("c1", {"type": "chat", "id": "c1"})
    chats.open("c2", {"type": "chat", "id": "c2"})
    chats.answer({"type": "error", "code": "not_found", "ref": "c1"})
    assert [frame["id"] for frame in chats.unanswered()] == ["c2"]


def test_threads_are_resumed_one_after_another():
    queue = ResumeQueue()
    queue.restart(["a", "b"])
    assert queue.next() == "a"
    assert not queue.answers({"type": "resumed", "thread_id": "b"})
    assert queue.answers({"type": "resumed", "thread_id": "a"})
    assert queue.next() == "b"
    assert queue.next() is None
    assert not queue.answers({"type": "error", "code": "not_found", "ref": None})


def test_a_resume_is_answered_by_an_error_that_names_its_thread_and_by_no_other():
    queue = ResumeQueue()
    queue.restart(["a"])
    queue.next()
    # The ref-less refusals of acks and pongs, and a frame that crashed on the server.
    assert not queue.answers({"type": "error", "code": "rate_limited", "ref": None})
    assert not queue.answers({"type": "error", "code": "invalid_field", "thread_id": None})
    assert not queue.answers({"type": "error", "code": "not_found", "thread_id": "b"})
    assert queue.answers({"type": "error", "code": "rate_limited", "thread_id": "a"})


def test_a_rate_limited_resume_goes_back_to_the_front_and_a_lost_thread_is_recorded():
    queue = ResumeQueue()
    queue.restart(["a", "b"])
    queue.next()
    assert queue.refused({"type": "error", "code": "rate_limited", "thread_id": "a"}) is True
    assert (queue.current, queue.retries) == (None, 1)
    assert queue.next() == "a"
    assert queue.refused({"type": "error", "code": "not_found", "thread_id": "a"}) is False
    assert [(e["thread_id"], e["code"]) for e in queue.errors] == [("a", "not_found")]
    assert queue.next() == "b"


def test_a_reconnect_starts_the_round_again():
    queue = ResumeQueue()
    queue.restart(["a", "b"])
    queue.next()
    queue.restart(["c"])
    assert queue.current is None
    assert queue.next() == "c"
