"""VIGIL_METRICS_ENABLED=false (the telemetry-overhead bench's switch): runs work the same,
/metrics still answers, and nothing is recorded."""

import httpx

from core.client import VigilClient
from tests.integration.runs import assert_well_formed_run


async def test_with_metrics_off_runs_work_and_nothing_is_counted(start_server):
    server = await start_server(metrics_enabled=False)
    async with VigilClient.connect(server.ws_url, server.token("alice")) as client:
        result = await client.run("What is 2 + 2?")
    assert_well_formed_run(result.events)
    assert server.metric("vigil_events_emitted_total", {"type": "agent_started"}) == 0
    assert server.metric("vigil_ws_active_connections") == 0
    async with httpx.AsyncClient() as http:
        exposition = await http.get(f"{server.base_url}/metrics")
    assert exposition.status_code == 200 and "vigil_events_emitted_total" in exposition.text


async def test_metrics_are_on_by_default(live_server):
    async with VigilClient.connect(live_server.ws_url, live_server.token("alice")) as client:
        await client.run("What is 2 + 2?")
    assert live_server.metric("vigil_events_emitted_total", {"type": "agent_started"}) == 1
