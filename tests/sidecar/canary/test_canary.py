"""The canary over real sockets: a live backend passes every phase; each way a backend can
fail is blamed on the phase where it failed."""

from __future__ import annotations

from core.auth import issue_token
from core.settings import load_settings
from sidecar.canary.checker import PHASES, RUN
from sidecar.canary.run import CanaryLoop, run_canary
from sidecar.metrics import SidecarMetrics
from tests.fixtures.servers import BackendProcess
from tests.sidecar.fakes import a_run, closed_port, event, scripted_backend

TOKEN = issue_token(load_settings(), "canary", extra_claims={"canary": True})


async def test_against_the_live_backend_every_phase_is_recorded(backend: BackendProcess) -> None:
    metrics = SidecarMetrics()
    token = backend.token("vigil-canary", canary=True)
    loop = CanaryLoop(backend.ws_url, lambda: token, metrics)
    result = await loop.once()
    assert (result.outcome, result.phase) == ("success", "none"), result.detail
    assert set(result.phases) == {*PHASES, RUN}
    registry = metrics.registry
    assert (
        registry.get_sample_value(
            "vigil_canary_runs_total", {"outcome": "success", "phase": "none"}
        )
        == 1
    )
    for phase in PHASES:
        labels = {"phase": phase}
        assert registry.get_sample_value("vigil_canary_phase_seconds_count", labels) == 1


async def test_a_backend_refusing_the_canarys_key_is_blamed_on_auth(
    backend: BackendProcess,
) -> None:
    wrong = issue_token(load_settings(jwt_secret="x" * 40), "vigil-canary", extra_claims={})
    result = await run_canary(backend.ws_url, wrong)
    assert (result.outcome, result.phase) == ("refused", "auth")
    assert "invalid_signature" in result.detail


async def test_a_backend_that_is_down_is_blamed_on_connect() -> None:
    result = await run_canary(f"ws://127.0.0.1:{closed_port()}/ws", TOKEN)
    assert (result.outcome, result.phase) == ("unreachable", "connect")
    assert result.phases == {}


async def test_a_backend_that_is_not_ready_is_blamed_on_connect() -> None:
    async with scripted_backend([], refuse=503) as url:
        result = await run_canary(url, TOKEN)
    assert (result.outcome, result.phase) == ("unavailable", "connect")


async def test_a_run_that_never_starts_is_blamed_on_agent_started() -> None:
    async with scripted_backend([]) as url:
        result = await run_canary(url, TOKEN, deadline_s=0.5)
    assert (result.outcome, result.phase) == ("timeout", "agent_started")
    assert "handshake" in result.phases


async def test_a_run_that_never_completes_is_blamed_on_agent_completed() -> None:
    async with scripted_backend(a_run()[:-1]) as url:
        result = await run_canary(url, TOKEN, deadline_s=0.5)
    assert (result.outcome, result.phase) == ("timeout", "agent_completed")
    assert set(result.phases) == {"handshake", "agent_started", "agent_thinking", "tool_pair"}


async def test_a_dropped_event_is_blamed_on_its_phase() -> None:
    run = a_run()
    del run[3]  # tool_completed never sent: agent_completed arrives with seq 5 after 3
    async with scripted_backend(run) as url:
        result = await run_canary(url, TOKEN)
    assert (result.outcome, result.phase) == ("missing_event", "tool_pair")


async def test_events_out_of_order_are_blamed_where_they_broke_the_order() -> None:
    run = [event("agent_thinking", 1, text="t", step=1), *a_run()[1:]]
    async with scripted_backend(run) as url:
        result = await run_canary(url, TOKEN)
    assert (result.outcome, result.phase) == ("out_of_order", "agent_started")


async def test_a_socket_closed_mid_run_is_blamed_as_a_disconnect() -> None:
    async with scripted_backend(a_run()[:2], close=1011) as url:
        result = await run_canary(url, TOKEN)
    assert (result.outcome, result.phase) == ("disconnected", "tool_pair")


async def test_a_scripted_good_run_succeeds() -> None:
    async with scripted_backend(a_run()) as url:
        result = await run_canary(url, TOKEN)
    assert result.ok, result.detail
