"""Every handshake refusal is an HTTP response with its status and reason, and counted."""

import asyncio
import time

import jwt
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from core.client import HandshakeRefused, VigilClient


async def refusal(ws_url: str, **options) -> tuple[int, dict]:
    with pytest.raises(InvalidStatus) as caught:
        async with connect(ws_url, open_timeout=5, **options):
            pass
    import json

    return caught.value.response.status_code, json.loads(caught.value.response.body)


def signed(server, **claims) -> str:
    body = {"sub": "alice", "exp": int(time.time()) + 60, **claims}
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, server.settings.signing_key, algorithm="HS256")


@pytest.mark.parametrize(
    ("make_token", "reason"),
    [
        (lambda s: "not-a-jwt", "malformed_token"),
        (lambda s: signed(s, exp=int(time.time()) - 5), "token_expired"),
        (lambda s: signed(s, nbf=int(time.time()) + 600), "token_not_yet_valid"),
        (lambda s: signed(s, exp=None), "missing_claim"),
        (
            lambda s: jwt.encode({"sub": "a", "exp": 9999999999}, None, algorithm="none"),
            "unsupported_algorithm",
        ),
        (
            lambda s: jwt.encode({"sub": "a", "exp": 9999999999}, "k" * 64, algorithm="HS256"),
            "invalid_signature",
        ),
    ],
)
async def test_a_bad_token_is_refused_with_401_and_its_reason(live_server, make_token, reason):
    status, body = await refusal(
        live_server.ws_url, subprotocols=["vigil.v1", f"bearer.{make_token(live_server)}"]
    )
    assert (status, body) == (401, {"error": "unauthenticated", "reason": reason})
    assert live_server.metric("vigil_auth_failures_total", {"reason": reason}) == 1
    assert (
        live_server.metric("vigil_ws_connections_total", {"outcome": "rejected", "reason": reason})
        == 1
    )


async def test_audience_and_issuer_are_checked_when_configured(start_server):
    server = await start_server(jwt_audience="vigil", jwt_issuer="idp")
    for claims, reason in [
        ({"aud": "other", "iss": "idp"}, "invalid_audience"),
        ({"aud": "vigil", "iss": "other"}, "invalid_issuer"),
    ]:
        status, body = await refusal(
            server.ws_url, subprotocols=["vigil.v1", f"bearer.{signed(server, **claims)}"]
        )
        assert (status, body["reason"]) == (401, reason)


async def test_no_token_is_missing_token(live_server):
    status, body = await refusal(live_server.ws_url, subprotocols=["vigil.v1"])
    assert (status, body["reason"]) == (401, "missing_token")


async def test_a_token_in_the_query_string_is_refused(live_server):
    url = f"{live_server.ws_url}?token={live_server.token('alice')}"
    status, _ = await refusal(url, subprotocols=["vigil.v1"])
    assert status == 401


async def test_a_client_not_offering_vigil_v1_gets_400(live_server):
    status, body = await refusal(
        live_server.ws_url, subprotocols=[f"bearer.{live_server.token('alice')}"]
    )
    assert (status, body) == (400, {"error": "bad_request", "reason": "unsupported_protocol"})


async def test_a_draining_server_answers_503(live_server):
    live_server.services.lifecycle.draining = True
    with pytest.raises(HandshakeRefused) as caught:
        await VigilClient.open(live_server.ws_url, live_server.token("alice"))
    assert (caught.value.status, caught.value.reason) == (503, "not_ready")


async def test_the_connection_quota_is_403(start_server):
    server = await start_server(max_connections_per_user=1)
    async with VigilClient.connect(server.ws_url, server.token("alice")):
        with pytest.raises(HandshakeRefused) as caught:
            await VigilClient.open(server.ws_url, server.token("alice"))
        async with VigilClient.connect(server.ws_url, server.token("bob")):
            pass
    assert (caught.value.status, caught.value.reason) == (403, "connection_quota")


async def test_concurrent_handshakes_past_the_quota_accept_exactly_the_quota(start_server):
    quota, extra = 3, 30
    server = await start_server(max_connections_per_user=quota)
    token = server.token("alice")

    async def handshake() -> object:
        try:
            return await VigilClient.open(server.ws_url, token)
        except HandshakeRefused as refused:
            return refused

    outcomes = await asyncio.gather(*(handshake() for _ in range(quota + extra)))
    accepted = [o for o in outcomes if isinstance(o, VigilClient)]
    refused = [o for o in outcomes if isinstance(o, HandshakeRefused)]
    for client in accepted:
        await client.close()
    assert len(accepted) == quota
    assert [(r.status, r.reason) for r in refused] == [(403, "connection_quota")] * extra


async def test_the_authorization_header_works_and_the_token_is_never_echoed(live_server):
    token = live_server.token("alice")
    async with VigilClient.connect(live_server.ws_url, token, via_header=True) as client:
        assert client.websocket.subprotocol == "vigil.v1"
        assert client.ready["user_id"] == "alice"
        assert client.ready["protocol"] == "vigil.v1"
        assert client.ready["heartbeat_interval_s"] > 0
    async with VigilClient.connect(live_server.ws_url, token) as client:
        assert client.websocket.subprotocol == "vigil.v1"
    assert token not in live_server.logs.getvalue()


async def test_refusals_are_logged_with_a_request_id_and_never_the_token(live_server):
    token = signed(live_server, exp=int(time.time()) - 5)
    await refusal(live_server.ws_url, subprotocols=["vigil.v1", f"bearer.{token}"])
    logs = live_server.logs.getvalue()
    assert '"reason": "token_expired"' in logs
    assert '"request_id"' in logs
    assert token not in logs
