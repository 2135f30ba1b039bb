"""Property: whatever the interleaving of emits, acks, duplicated frames, dropped
connections, reconnects, resumes and redeliveries, the application is handed every event
of every thread exactly once and in seq order, and every resume recovers."""

from hypothesis import given, settings
from hypothesis import strategies as st

from core.delivery.redelivery import RetrySchedule
from tests.core.delivery.simulation import SimClient, SimServer

THREADS = ["a", "b"]
STEPS = st.sampled_from(
    [
        "emit_a",
        "emit_b",
        "receive",
        "receive",
        "receive",
        "duplicate",
        "drop",
        "reconnect",
        "reconnect",
        "progress_resume",
        "progress_resume",
        "tick",
    ]
)


def play(steps: list[str], schedule: RetrySchedule) -> tuple[SimServer, SimClient]:
    server = SimServer(schedule)
    client = SimClient(server, THREADS)
    for step in steps:
        match step:
            case "emit_a" | "emit_b":
                server.emit(step[-1])
            case "receive":
                client.receive()
            case "duplicate":
                client.receive(duplicate=True)
            case "drop":
                client.drop()
            case "reconnect":
                client.reconnect()
            case "progress_resume":
                client.progress_resume()
            case "tick":
                server.tick(1.0)
    client.settle()
    return server, client


def assert_exactly_once_in_order(server: SimServer, client: SimClient) -> None:
    for thread in THREADS:
        emitted = len(server.log.get(thread, []))
        assert client.seen[thread] == list(range(1, emitted + 1))
    assert all(server.recovered)
    assert server.redelivery.window.pending_count() == 0


@settings(max_examples=500, deadline=None)
@given(st.lists(STEPS, max_size=100))
def test_every_event_reaches_the_application_exactly_once_and_in_order(steps):
    assert_exactly_once_in_order(*play(steps, RetrySchedule(1.0, 3, 2.0)))


@settings(max_examples=300, deadline=None)
@given(st.lists(STEPS, max_size=100))
def test_a_spent_retry_budget_loses_nothing_the_log_still_holds(steps):
    """Even with no redelivery at all, resume alone brings every event."""
    assert_exactly_once_in_order(*play(steps, RetrySchedule(1.0, 0, 1.0)))


def test_a_live_event_emitted_while_a_resume_is_read_comes_once_after_the_replay():
    server = SimServer(RetrySchedule(1.0))
    client = SimClient(server, ["a"])
    server.emit("a")
    client.drop()
    server.emit("a")
    client.reconnect()
    client.progress_resume()  # the replay is read: seqs 1, 2
    server.emit("a")  # seq 3 arrives live while the replay is not yet sent
    client.progress_resume()  # seq 1 goes out
    server.emit("a")  # seq 4 arrives live while the replay is being sent
    client.progress_resume()  # seq 2
    server.emit("a")  # seq 5
    client.settle()
    assert client.seen["a"] == [1, 2, 3, 4, 5]
    assert client.inbound.duplicates == 0
