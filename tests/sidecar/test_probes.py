"""Probes of the backend's /healthz and /readyz, against httpx's own fake transport."""

from __future__ import annotations

import json

import httpx

from sidecar.probes import probe


async def probe_answered_with(body: bytes, status: int = 200) -> dict[str, object]:
    transport = httpx.MockTransport(lambda _: httpx.Response(status, content=body))
    async with httpx.AsyncClient(transport=transport) as client:
        result = await probe(client, "http://backend", "readyz", timeout=1.0)
    return result.as_dict()


async def test_the_readyz_body_is_kept_for_the_status_page() -> None:
    result = await probe_answered_with(b'{"status": "not_ready", "database": "down"}', 503)
    assert result["up"] is False and result["detail"] == "HTTP 503"
    assert result["body"] == {"status": "not_ready", "database": "down"}


async def test_a_body_with_nan_is_dropped_so_slo_stays_json() -> None:
    result = await probe_answered_with(b'{"status": "ready", "lag_s": NaN}')
    assert result["up"] is True and result["body"] == {}
    json.dumps(result, allow_nan=False)
