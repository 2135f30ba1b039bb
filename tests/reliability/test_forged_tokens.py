"""Forged JWTs against a live backend that trusts one RS256 key: each forgery is refused
before the socket is accepted, with its documented reason, and counted."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from core.client import HandshakeRefused, VigilClient

pytestmark = pytest.mark.slow

AUDIENCE, ISSUER = "vigil", "https://idp.example"


@pytest.fixture(scope="module")
def keys() -> tuple[bytes, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem.decode()


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    body = {"sub": "alice", "exp": now + 300, "iat": now, "aud": AUDIENCE, "iss": ISSUER}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_with(key: bytes, body: dict[str, Any]) -> str:
    """HS256 signed with an arbitrary byte key, bypassing PyJWT's refusal to HMAC with a
    PEM key (the classic algorithm-confusion forgery)."""
    import hashlib
    import hmac

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64(json.dumps(body).encode())
    signature = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


def tampered(token: str) -> str:
    header, _, signature = token.split(".")
    payload = b64(json.dumps(claims(sub="mallory")).encode())
    return f"{header}.{payload}.{signature}"


def unsigned(body: dict[str, Any]) -> str:
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{b64(json.dumps(body).encode())}."


FORGERIES = [
    ("alg none", lambda priv, pub: unsigned(claims()), "unsupported_algorithm"),
    ("alg None", lambda priv, pub: unsigned(claims()).replace("bm9uZ", "Tm9uZ"), None),
    (
        "HS256 signed with the RS public key",
        lambda priv, pub: hs256_with(pub.encode(), claims()),
        "unsupported_algorithm",
    ),
    (
        "tampered payload",
        lambda priv, pub: tampered(jwt.encode(claims(), priv, algorithm="RS256")),
        "invalid_signature",
    ),
    (
        "signed by another key",
        lambda priv, pub: jwt.encode(
            claims(), rsa.generate_private_key(public_exponent=65537, key_size=2048),
            algorithm="RS256",
        ),
        "invalid_signature",
    ),
    (
        "expired",
        lambda priv, pub: jwt.encode(claims(exp=int(time.time()) - 60), priv, algorithm="RS256"),
        "token_expired",
    ),
    (
        "wrong audience",
        lambda priv, pub: jwt.encode(claims(aud="another-service"), priv, algorithm="RS256"),
        "invalid_audience",
    ),
    (
        "wrong issuer",
        lambda priv, pub: jwt.encode(claims(iss="https://evil.example"), priv, algorithm="RS256"),
        "invalid_issuer",
    ),
    (
        "no exp",
        lambda priv, pub: jwt.encode(claims(exp=None), priv, algorithm="RS256"),
        "missing_claim",
    ),
]  # fmt: skip


async def test_every_forged_token_is_refused_with_its_reason(start_server, keys):
    private_pem, public_pem = keys
    server = await start_server(
        jwt_public_key=public_pem,
        jwt_algorithms=["RS256"],
        jwt_audience=AUDIENCE,
        jwt_issuer=ISSUER,
    )
    refused: dict[str, str] = {}
    for name, forge, expected in FORGERIES:
        with pytest.raises(HandshakeRefused) as caught:
            await VigilClient.open(server.ws_url, forge(private_pem, public_pem))
        assert caught.value.status == 401, name
        refused[name] = caught.value.reason
        if expected is not None:
            assert caught.value.reason == expected, (name, caught.value.body)
    # "None" is not "none" to PyJWT either; any refusal reason will do, as long as it is one.
    assert refused["alg None"] in {"unsupported_algorithm", "malformed_token"}
    # The genuine token still gets in, so the refusals above are about the forgeries.
    genuine = jwt.encode(claims(), private_pem, algorithm="RS256")
    async with VigilClient.connect(server.ws_url, genuine) as client:
        assert client.ready["user_id"] == "alice"
    failures = sum(
        server.metric("vigil_auth_failures_total", {"reason": reason})
        for reason in set(refused.values())
    )
    assert failures == len(FORGERIES)
    print(f"\nforged tokens tried: {len(FORGERIES)}, refused: {len(refused)}")


async def test_a_forged_token_is_refused_by_the_rest_api_too(start_server, keys):
    import httpx

    private_pem, public_pem = keys
    server = await start_server(
        jwt_public_key=public_pem, jwt_algorithms=["RS256"], jwt_audience=AUDIENCE,
        jwt_issuer=ISSUER,
    )  # fmt: skip
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        for name, forge, expected in FORGERIES:
            token = forge(private_pem, public_pem)
            response = await http.get("/api/threads", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401, name
            if expected is not None:
                assert response.json() == {"error": "unauthenticated", "reason": expected}, name
