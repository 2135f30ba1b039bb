"""What one run leaves behind: its span tree, the metric samples it moves, its log lines."""

import json

from opentelemetry.trace import SpanKind, format_trace_id
from websockets.asyncio.client import connect

from core.client import VigilClient
from core.protocol import SUBPROTOCOL
from tests.integration.runs import eventually


async def one_calculator_run(server) -> dict:
    async with VigilClient.connect(server.ws_url, server.token("alice")) as client:
        result = await client.run("What is 17 * 23?")
        # The client's last ack and the run's last span land just after agent_completed.
        await eventually(
            lambda: (
                server.metric("vigil_events_acked_total", {"type": "agent_completed"}) == 1
                and any(s.name == "invoke_agent vigil" for s in server.spans.get_finished_spans())
            )
        )
    return result.accepted


async def test_a_run_is_the_root_of_its_own_trace_with_a_span_per_phase(live_server):
    accepted = await one_calculator_run(live_server)
    spans = live_server.spans.get_finished_spans()
    root = next(s for s in spans if s.name == "invoke_agent vigil")
    assert root.parent is None
    assert root.attributes["vigil.run_id"] == accepted["run_id"]
    assert root.links, "the run links back to its connection's span"
    connection_trace = root.links[0].context.trace_id
    assert connection_trace != root.context.trace_id
    in_run = [s for s in spans if s.context.trace_id == root.context.trace_id]
    children = {s.name for s in in_run if s.parent and s.parent.span_id == root.context.span_id}
    assert {"preflight", "triage", "chat vigil-offline-1", "execute_tool calculator"} <= children
    chat = next(s for s in in_run if s.name == "chat vigil-offline-1")
    assert chat.attributes["gen_ai.operation.name"] == "chat"
    assert chat.attributes["gen_ai.request.model"] == "vigil-offline-1"
    assert chat.attributes["gen_ai.usage.input_tokens"] > 0
    tool = next(s for s in in_run if s.name == "execute_tool calculator")
    assert tool.attributes["gen_ai.tool.name"] == "calculator"
    handshake = next(s for s in spans if s.name == "ws.handshake")
    assert root.links[0].context.span_id == handshake.context.span_id
    # The run's trace starts with its chat's admission: the transaction that admitted it is
    # the root's first stretch, up to its ``admitted`` event, not a span of its own.
    (admitted,) = [e for e in root.events if e.name == "admitted"]
    preflight = next(s for s in in_run if s.name == "preflight")
    assert root.start_time < admitted.timestamp <= preflight.start_time
    assert not [s for s in spans if s.name == "db.transaction admit_run"]
    # Its events are stored in batches shared with other runs: each batch is a trace of its
    # own, one span linked to the spans its events were emitted in, which holds the batch's
    # transaction (no child, no span per statement: docs/telemetry.md).
    batches = [
        s
        for s in spans
        if s.name == "store_events"
        and any(link.context.trace_id == root.context.trace_id for link in s.links)
    ]
    assert batches and all(s.parent is None and s.kind == SpanKind.CLIENT for s in batches)
    assert {s.attributes["db.system.name"] for s in batches} == {"sqlite"}
    assert {s.attributes["vigil.db.operation"] for s in batches} == {"append_event"}
    assert all([e.name for e in s.events] == ["events_stored"] for s in batches)
    in_batches = {s.context.trace_id for s in batches}
    assert not [s.name for s in spans if s.context.trace_id in in_batches and s.parent]
    assert not any(s.name.endswith(("receive", "send")) for s in spans), "no span per message"


async def test_a_connections_span_is_its_handshake_which_continues_the_clients_trace(
    live_server,
):
    client_trace, client_span = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    async with connect(
        live_server.ws_url,
        subprotocols=[SUBPROTOCOL, f"bearer.{live_server.token('alice')}"],  # type: ignore[list-item]
        additional_headers={"traceparent": f"00-{client_trace}-{client_span}-01"},
    ) as websocket:
        ready = json.loads(await websocket.recv())
        # Ended once accepted, while the connection stays open.
        [handshake] = [
            s for s in live_server.spans.get_finished_spans() if s.name == "ws.handshake"
        ]
    assert handshake.kind == SpanKind.SERVER
    assert format_trace_id(handshake.context.trace_id) == client_trace
    assert handshake.parent is not None and handshake.parent.span_id == int(client_span, 16)
    assert handshake.attributes["enduser.id"] == "alice"
    lines = [json.loads(line) for line in live_server.logs.getvalue().splitlines() if line]
    opened = next(line for line in lines if line["event"] == "connection_opened")
    assert opened["connection_id"] == ready["connection_id"]
    assert opened["trace_id"] == client_trace


async def test_a_run_moves_the_metric_samples_it_should(live_server):
    await one_calculator_run(live_server)
    m = live_server.metric
    assert m("vigil_runs_total", {"status": "completed"}) == 1
    assert m("vigil_run_duration_seconds_count") == 1
    for kind in ["agent_started", "tool_executing", "tool_completed", "agent_completed"]:
        assert m("vigil_events_emitted_total", {"type": kind}) == 1
        assert m("vigil_events_acked_total", {"type": kind}) == 1
        assert m("vigil_event_ack_latency_seconds_count", {"type": kind}) == 1
    assert m("vigil_events_emitted_total", {"type": "agent_thinking"}) >= 2
    assert m("vigil_tool_calls_total", {"tool": "calculator", "status": "ok"}) == 1
    for phase in ["preflight", "triage", "model_call", "tool_call"]:
        assert m("vigil_phase_duration_seconds_count", {"phase": phase}) >= 1
    assert (
        m(
            "gen_ai_client_operation_duration_seconds_count",
            {"gen_ai_operation_name": "chat", "gen_ai_request_model": "vigil-offline-1"},
        )
        == 2
    )
    assert m("gen_ai_client_token_usage_count", {"gen_ai_token_type": "input"}) == 2
    assert m("vigil_ws_connections_total", {"outcome": "accepted", "reason": ""}) == 1
    assert m("vigil_isolation_violations_total") == 0


async def test_latency_histograms_carry_trace_id_exemplars(live_server):
    await one_calculator_run(live_server)
    body, _ = live_server.services.metrics.exposition("application/openmetrics-text")
    root = next(s for s in live_server.spans.get_finished_spans() if s.name == "invoke_agent vigil")
    trace_id = format_trace_id(root.context.trace_id)
    duration_lines = [
        line
        for line in body.decode().splitlines()
        if line.startswith("vigil_run_duration_seconds_bucket")
    ]
    assert any(f'trace_id="{trace_id}"' in line for line in duration_lines)


async def test_every_log_line_of_a_run_carries_its_trace_and_run_ids(live_server):
    accepted = await one_calculator_run(live_server)
    root = next(s for s in live_server.spans.get_finished_spans() if s.name == "invoke_agent vigil")
    trace_id = format_trace_id(root.context.trace_id)
    lines = [json.loads(line) for line in live_server.logs.getvalue().splitlines() if line]
    run_lines = [line for line in lines if line.get("run_id") == accepted["run_id"]]
    assert any(line["event"] == "run_finished" for line in run_lines)
    for line in run_lines:
        assert line["trace_id"] == trace_id
        assert line["span_id"]
        assert line["user_id"] == "alice"
