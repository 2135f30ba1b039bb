"""The canary's phase checker, fed events and a fake timer: timings and blame, no sockets."""

from __future__ import annotations

from typing import Any

import pytest

from sidecar.canary.checker import (
    AGENT_ERROR,
    MISSING_EVENT,
    NO_PHASE,
    OUT_OF_ORDER,
    PHASES,
    RUN,
    SUCCESS,
    TIMEOUT,
    PhaseChecker,
)


class Timer:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def event(kind: str, seq: int, run_id: str = "r1", **data: Any) -> dict[str, Any]:
    return {"type": kind, "seq": seq, "run_id": run_id, "thread_id": "t", "data": data}


GOOD_RUN = [
    event("agent_started", 1),
    event("agent_thinking", 2),
    event("tool_executing", 3, call_id="c1"),
    event("tool_completed", 4, call_id="c1", status="ok"),
    event("agent_thinking", 5),
    event("agent_completed", 6, status="completed"),
]


def started(timer: Timer, deadline: float = 15.0) -> PhaseChecker:
    checker = PhaseChecker(timer, deadline)
    timer.now += 0.05
    checker.connected()
    checker.chat_sent()
    checker.chat_accepted("r1")
    return checker


def test_a_good_run_succeeds_with_each_phase_timed() -> None:
    timer = Timer()
    checker = started(timer)
    results = []
    for step, item in enumerate(GOOD_RUN):
        timer.now += 0.1 * (step + 1)
        results.append(checker.feed(item))
    result = results[-1]
    assert results[:-1] == [None] * 5
    assert result is not None
    assert (result.outcome, result.phase) == (SUCCESS, NO_PHASE)
    assert list(result.phases) == [*PHASES, RUN]
    assert result.phases["handshake"] == pytest.approx(0.05)
    assert result.phases["agent_started"] == pytest.approx(0.1)
    assert result.phases["agent_thinking"] == pytest.approx(0.2)
    assert result.phases["tool_pair"] == pytest.approx(0.3 + 0.4)
    assert result.phases["agent_completed"] == pytest.approx(0.5 + 0.6)
    assert result.phases[RUN] == pytest.approx(0.05 + 2.1)


def feed_all(checker: PhaseChecker, events: list[dict[str, Any]]) -> tuple[str, str]:
    for item in events:
        result = checker.feed(item)
        if result is not None:
            return result.outcome, result.phase
    result = checker.expire()
    return result.outcome, result.phase


@pytest.mark.parametrize(
    ("events", "blame"),
    [
        ([], (TIMEOUT, "agent_started")),
        (GOOD_RUN[:1], (TIMEOUT, "agent_thinking")),
        (GOOD_RUN[:3], (TIMEOUT, "tool_pair")),
        (GOOD_RUN[:5], (TIMEOUT, "agent_completed")),
        ([GOOD_RUN[1]], (OUT_OF_ORDER, "agent_started")),
        ([GOOD_RUN[0], GOOD_RUN[2]], (MISSING_EVENT, "agent_thinking")),  # seq 1 then 3
        ([*GOOD_RUN[:3], GOOD_RUN[4]], (MISSING_EVENT, "tool_pair")),  # tool_completed dropped
        (
            [*GOOD_RUN[:2], event("agent_completed", 3, status="completed")],
            (MISSING_EVENT, "tool_pair"),
        ),
        (
            [*GOOD_RUN[:2], event("tool_completed", 3, call_id="c9")],
            (OUT_OF_ORDER, "tool_pair"),
        ),
        (
            [*GOOD_RUN[:2], event("agent_error", 3, reason="timeout", message="slow")],
            (AGENT_ERROR, "tool_pair"),
        ),
        (
            [*GOOD_RUN[:5], event("agent_completed", 6, status="failed")],
            (AGENT_ERROR, "agent_completed"),
        ),
        ([*GOOD_RUN[:4], event("agent_started", 5)], (OUT_OF_ORDER, "agent_completed")),
    ],
    ids=[
        "no agent_started",
        "no thinking",
        "no tool_completed",
        "no agent_completed",
        "thinking first",
        "seq gap",
        "tool_completed dropped",
        "completed without a tool pair",
        "unannounced tool_completed",
        "agent_error",
        "failed status",
        "second agent_started",
    ],
)
def test_a_broken_run_blames_the_phase_it_broke_in(
    events: list[dict[str, Any]], blame: tuple[str, str]
) -> None:
    assert feed_all(started(Timer()), events) == blame


def test_events_of_another_run_are_ignored() -> None:
    checker = started(Timer())
    assert checker.feed(event("agent_completed", 1, run_id="other", status="completed")) is None
    assert feed_all(checker, [event(e["type"], e["seq"] + 1, **e["data"]) for e in GOOD_RUN]) == (
        SUCCESS,
        NO_PHASE,
    )


def test_a_run_over_the_deadline_is_a_timeout_even_when_complete() -> None:
    timer = Timer()
    checker = started(timer, deadline=1.0)
    for item in GOOD_RUN[:-1]:
        checker.feed(item)
    timer.now += 2.0
    result = checker.feed(GOOD_RUN[-1])
    assert result is not None
    assert (result.outcome, result.phase) == (TIMEOUT, "agent_completed")


def test_the_first_verdict_stands() -> None:
    checker = started(Timer())
    first = checker.feed(GOOD_RUN[1])
    assert checker.feed(GOOD_RUN[0]) is first
    assert checker.expire() is first
