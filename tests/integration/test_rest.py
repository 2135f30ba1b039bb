"""The REST API serves the caller's own threads and events, and the health endpoints."""

import httpx

from core.client import VigilClient


def bearer(server, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.token(user)}"}


async def test_threads_and_events_are_the_callers_own(live_server):
    async with VigilClient.connect(live_server.ws_url, live_server.token("alice")) as client:
        result = await client.run("What is 5 * 5?")
    thread_id = result.accepted["thread_id"]
    async with httpx.AsyncClient(base_url=live_server.base_url) as http:
        threads = (await http.get("/api/threads", headers=bearer(live_server, "alice"))).json()
        assert [t["thread_id"] for t in threads["threads"]] == [thread_id]
        page = await http.get(
            f"/api/threads/{thread_id}/events",
            params={"after_seq": 2, "limit": 2},
            headers=bearer(live_server, "alice"),
        )
        assert [e["seq"] for e in page.json()["events"]] == [3, 4]
        assert page.json()["events"] == result.events[2:4]
        assert (await http.get("/api/threads", headers=bearer(live_server, "bob"))).json() == {
            "threads": []
        }
        other = await http.get(
            f"/api/threads/{thread_id}/events", headers=bearer(live_server, "bob")
        )
        assert other.status_code == 404


async def test_the_rest_api_refuses_a_missing_or_bad_token_with_its_reason(live_server):
    async with httpx.AsyncClient(base_url=live_server.base_url) as http:
        missing = await http.get("/api/threads")
        bad = await http.get("/api/threads", headers={"Authorization": "Bearer x.y.z"})
        bad_limit = await http.get(
            "/api/threads/t/events", params={"limit": 0}, headers=bearer(live_server, "alice")
        )
    assert (missing.status_code, missing.json()["reason"]) == (401, "missing_token")
    assert (bad.status_code, bad.json()["reason"]) == (401, "malformed_token")
    assert bad_limit.status_code == 422


async def test_readiness_reports_each_dependency_and_turns_false_when_draining(live_server):
    async with httpx.AsyncClient(base_url=live_server.base_url) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
        assert ready.status_code == 200
        checks = ready.json()["checks"]
        assert checks["database"]["ok"] and checks["provider"]["circuit"] == "closed"
        live_server.services.lifecycle.draining = True
        draining = await http.get("/readyz")
    assert draining.status_code == 503
    assert draining.json()["checks"]["lifecycle"]["state"] == "draining"


async def test_metrics_are_served_as_prometheus_text_and_as_openmetrics(live_server):
    async with httpx.AsyncClient(base_url=live_server.base_url) as http:
        text = await http.get("/metrics")
        openmetrics = await http.get(
            "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
    assert "vigil_ws_active_connections" in text.text
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.rstrip().endswith("# EOF")


async def test_an_operator_can_drain_the_backend_and_a_user_cannot(live_server):
    async with VigilClient.connect(live_server.ws_url, live_server.token("alice")) as client:
        async with httpx.AsyncClient(base_url=live_server.base_url) as http:
            refused = await http.post(
                "/admin/drain", json={"reason": "test"}, headers=bearer(live_server, "alice")
            )
            assert (refused.status_code, refused.json()["reason"]) == (
                403,
                "operator_role_required",
            )
            operator = {
                "Authorization": f"Bearer {live_server.token('sidecar', roles=['operator'])}"
            }
            accepted = await http.post("/admin/drain", json={"reason": "memory"}, headers=operator)
            assert accepted.status_code == 202
            assert (await http.get("/readyz")).status_code == 503
        await client.websocket.wait_closed()
    assert client.websocket.close_code == 1012
