"""GET /admin/traces: the recent runs' traces from the in-memory buffer, for operators."""

from __future__ import annotations

import httpx
from opentelemetry.trace import StatusCode

from core.client import VigilClient
from core.telemetry.trace_view import recent_runs
from core.telemetry.tracing import build_tracer_provider

PHASES = ("preflight", "triage", "chat vigil-offline-1", "execute_tool calculator")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_an_operator_reads_a_finished_runs_trace_with_its_phases(live_backend):
    async with VigilClient.connect(live_backend.ws_url, live_backend.token("alice")) as client:
        result = await client.run("What is 17 * 23?", None, timeout=20)
    run_id = result.events[0]["run_id"]
    operator = bearer(live_backend.token("ops", roles=["operator"]))
    async with httpx.AsyncClient(base_url=live_backend.base_url) as http:
        body = (await http.get("/admin/traces", params={"limit": 5}, headers=operator)).json()
    assert body["kept"] is True
    [run] = [r for r in body["runs"] if r["run_id"] == run_id]
    assert (run["status"], run["error"]) == ("ok", None)
    names = [span["name"] for span in run["spans"]]
    assert all(phase in names for phase in PHASES), names
    offsets = [span["offset_ms"] for span in run["spans"]]
    assert offsets == sorted(offsets) and offsets[0] >= 0
    # The run starts at its chat frame; the admission's commit comes before its first phase.
    assert 0 < run["admitted_ms"] <= offsets[0]
    assert all(s["offset_ms"] + s["duration_ms"] <= run["duration_ms"] for s in run["spans"])
    assert len(run["trace_id"]) == 32


async def test_traces_are_for_operators_only(live_backend):
    async with httpx.AsyncClient(base_url=live_backend.base_url) as http:
        anonymous = await http.get("/admin/traces")
        user = await http.get("/admin/traces", headers=bearer(live_backend.token("alice")))
        too_many = await http.get(
            "/admin/traces",
            params={"limit": 10_000},
            headers=bearer(live_backend.token("ops", roles=["operator"])),
        )
    assert anonymous.status_code == 401
    assert (user.status_code, user.json()["reason"]) == (403, "operator_role_required")
    assert too_many.status_code == 422


async def test_where_spans_go_to_an_exporter_none_are_kept(live_server):
    operator = bearer(live_server.token("ops", roles=["operator"]))
    async with httpx.AsyncClient(base_url=live_server.base_url) as http:
        body = (await http.get("/admin/traces", headers=operator)).json()
    assert body == {"kept": False, "runs": []}


def test_the_view_keeps_the_newest_runs_with_their_failures_and_leaves_other_traces_out():
    provider, buffer = build_tracer_provider(buffer_capacity=100, environ={})
    assert buffer is not None
    tracer = provider.get_tracer("test")
    for n in range(3):
        run = {"vigil.run_id": f"r{n}"}
        with (
            tracer.start_as_current_span("invoke_agent vigil", attributes=run),
            tracer.start_as_current_span("model_call") as phase,
        ):
            if n == 2:
                phase.set_status(StatusCode.ERROR, "phase_timeout")
    with tracer.start_as_current_span("store_events"):
        pass

    runs = recent_runs(buffer.recent(), limit=2)

    assert [r["run_id"] for r in runs] == ["r2", "r1"]
    assert runs[0]["spans"][0]["status"] == "error"
    assert runs[0]["spans"][0]["error"] == "phase_timeout"
    assert runs[0]["status"] == "ok"  # the phase failed, not the run's own span
    assert runs[0]["admitted_ms"] is None  # no admission event on these runs
