"""The server's delivery shell with a hand-turned clock: what is resent, to whom, and what
is counted. Real hub and connections over a recording socket: a connection's writer, run
at the end of a test, shows exactly what it would have sent, in order."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from starlette.websockets import WebSocket

from core.agent.tools.registry import default_registry
from core.delivery.redelivery import Redelivery, RetrySchedule
from core.delivery.window import AckWindow
from core.protocol import AgentEvent
from core.telemetry.metrics import Metrics
from core.ws.connection import Connection
from core.ws.delivery import Deliveries
from core.ws.hub import Hub
from tests.core.ws.sockets import RecordingSocket


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def connection(user: str, metrics: Metrics, *follows: str) -> Connection:
    conn = Connection(
        cast(WebSocket, RecordingSocket()),
        connection_id=f"{user}-conn",
        user_id=user,
        canary=False,
        metrics=metrics,
        max_queue_bytes=1 << 20,
    )
    for thread in follows:
        conn.follow(thread)
    return conn


async def sent_seqs(conn: Connection) -> list[int]:
    """Everything the connection was given, as its writer sends it."""
    conn.request_close(1000)
    await conn.wait_closed()
    socket = cast(RecordingSocket, conn.websocket)
    return [frame["seq"] for frame in socket.sent if "seq" in frame]


def family_total(metrics: Metrics, name: str) -> float:
    return sum(
        sample.value
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.name == name
    )


def event(seq: int, kind: str = "agent_thinking", thread: str = "t", **data) -> AgentEvent:
    return AgentEvent(
        type=kind,  # type: ignore[arg-type]
        thread_id=thread,
        run_id="r1",
        epoch="e1",
        seq=seq,
        event_id=f"ev{seq}",
        ts=datetime(2026, 11, 26, tzinfo=UTC),
        data=data,
    )


def setup(max_redeliveries: int = 2):
    metrics, hub, clock = Metrics(), Hub(), Clock()
    schedule = RetrySchedule(1.0, max_redeliveries, 2.0)
    deliveries = Deliveries(
        redelivery=Redelivery(AckWindow(), schedule),
        hub=hub,
        metrics=metrics,
        tools=default_registry(),
        clock=clock,
    )
    return metrics, hub, clock, deliveries


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def test_an_unacked_event_is_resent_to_the_owners_connections_that_follow_the_thread():
    metrics, hub, clock, deliveries = setup()
    following, elsewhere = connection("alice", metrics, "t"), connection("alice", metrics, "x")
    stranger = connection("mallory", metrics, "t")
    for conn in (following, elsewhere, stranger):
        hub.add(conn)
    deliveries.emitted("alice", event(1))
    clock.now = 1.0
    assert deliveries.sweep() == (1, 0)
    assert await sent_seqs(following) == [1, 1]
    assert await sent_seqs(elsewhere) == await sent_seqs(stranger) == []
    assert sample(metrics, "vigil_events_redelivered_total", type="agent_thinking") == 1


async def test_an_ack_stops_the_resends_and_measures_emit_to_ack():
    metrics, hub, clock, deliveries = setup()
    conn = connection("alice", metrics, "t")
    hub.add(conn)
    deliveries.emitted("alice", event(1))
    clock.now = 0.25
    [retired] = deliveries.acked("t", 1)
    assert retired.latency_s == 0.25
    clock.now = 100.0
    assert deliveries.sweep() == (0, 0)
    assert await sent_seqs(conn) == [1]
    assert (
        sample(metrics, "vigil_event_ack_latency_seconds_bucket", type="agent_thinking", le="0.25")
        == 1
    )


async def test_past_the_budget_an_event_is_undelivered_once_and_no_longer_resent():
    metrics, hub, clock, deliveries = setup(max_redeliveries=2)
    conn = connection("alice", metrics, "t")
    hub.add(conn)
    deliveries.emitted("alice", event(1, "agent_started"))
    for clock.now in (1.0, 3.0, 7.0, 50.0):
        deliveries.sweep()
    assert await sent_seqs(conn) == [1, 1, 1]
    assert (
        sample(
            metrics, "vigil_events_undelivered_total", type="agent_started", reason="ack_timeout"
        )
        == 1
    )
    assert sample(metrics, "vigil_events_pending_ack") == 0


def test_an_event_whose_owner_is_away_is_given_up_as_no_connection():
    metrics, _, clock, deliveries = setup(max_redeliveries=1)
    deliveries.emitted("alice", event(1))
    for clock.now in (1.0, 3.0):
        deliveries.sweep()
    assert (
        sample(
            metrics, "vigil_events_undelivered_total", type="agent_thinking", reason="no_connection"
        )
        == 1
    )


def test_a_tool_name_the_registry_does_not_know_is_labelled_unknown():
    metrics, hub, _, deliveries = setup()
    hub.add(connection("alice", metrics, "t"))
    for seq in range(1, 51):
        deliveries.emitted("alice", event(seq, "tool_executing", tool=f"made-up-{seq}"))
    tools = {
        series.labels["tool"]
        for family in metrics.registry.collect()
        for series in family.samples
        if series.name == "vigil_tool_events_emitted_total"
    }
    assert tools == {"unknown"}
    labels = {"tool": "unknown", "type": "tool_executing"}
    assert sample(metrics, "vigil_tool_events_emitted_total", **labels) == 50


def test_tool_events_are_counted_per_tool_when_emitted_and_when_acked():
    metrics, hub, _, deliveries = setup()
    hub.add(connection("alice", metrics, "t"))
    deliveries.emitted("alice", event(1, "tool_executing", tool="calculator"))
    deliveries.emitted("alice", event(2, "tool_completed", tool="calculator"))
    labels = {"tool": "calculator", "type": "tool_completed"}
    assert sample(metrics, "vigil_tool_events_emitted_total", **labels) == 1
    assert sample(metrics, "vigil_tool_events_acked_total", **labels) == 0
    deliveries.acked("t", 1)
    assert sample(metrics, "vigil_tool_events_acked_total", **labels) == 0
    deliveries.acked("t", 2)
    assert sample(metrics, "vigil_tool_events_acked_total", **labels) == 1


async def test_canary_events_are_resent_but_never_counted():
    metrics, hub, clock, deliveries = setup(max_redeliveries=1)
    conn = connection("canary", metrics, "t")
    hub.add(conn)
    deliveries.emitted("canary", event(1, "tool_executing", tool="calculator"), counted=False)
    for clock.now in (1.0, 3.0):
        deliveries.sweep()
    assert await sent_seqs(conn) == [1, 1]
    for name in (
        "vigil_events_emitted_total",
        "vigil_events_redelivered_total",
        "vigil_tool_events_emitted_total",
    ):
        assert family_total(metrics, name) == 0
    assert (
        sample(
            metrics, "vigil_events_undelivered_total", type="tool_executing", reason="ack_timeout"
        )
        == 0
    )


async def test_a_full_window_gives_up_its_oldest_event_as_undelivered():
    metrics, hub, clock = Metrics(), Hub(), Clock()
    redelivery = Redelivery(AckWindow(), RetrySchedule(1.0), max_pending=2)
    deliveries = Deliveries(
        redelivery=redelivery, hub=hub, metrics=metrics, tools=default_registry(), clock=clock
    )
    for seq in (1, 2, 3):
        deliveries.emitted("alice", event(seq, "agent_started" if seq == 1 else "agent_thinking"))
    labels = {"type": "agent_started", "reason": "window_full"}
    assert sample(metrics, "vigil_events_undelivered_total", **labels) == 1
    assert sample(metrics, "vigil_events_pending_ack") == 2
