import hashlib
import hmac
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from core.auth import Authenticator, AuthRefusal, issue_token, token_from_handshake
from core.settings import load_settings

SECRET = "a-test-secret-long-enough-for-every-hmac-algorithm-" + "x" * 20


@pytest.fixture
def settings():
    return load_settings(jwt_secret=SECRET, jwt_audience="vigil", jwt_issuer="tests")


def claims(**overrides):
    now = int(time.time())
    base = {"sub": "alice", "exp": now + 60, "aud": "vigil", "iss": "tests"}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def reason(settings, token: str) -> str:
    with pytest.raises(AuthRefusal) as caught:
        Authenticator(settings).authenticate(token)
    assert caught.value.status == 401
    return caught.value.reason


def test_a_valid_token_identifies_its_subject(settings):
    identity = Authenticator(settings).authenticate(issue_token(settings, "alice"))
    assert identity.user_id == "alice"
    assert not identity.canary


def test_the_canary_claim_marks_the_identity(settings):
    token = issue_token(settings, "canary", extra_claims={"canary": True})
    assert Authenticator(settings).authenticate(token).canary


# Each case builds its claims when the test runs (times relative to then): claims built at
# collection time would have expired by the time a long suite reaches them.
@pytest.mark.parametrize(
    ("make_claims", "expected"),
    [
        (lambda now: claims(exp=now - 10), "token_expired"),
        (lambda now: claims(nbf=now + 600), "token_not_yet_valid"),
        (lambda now: claims(aud="someone-else"), "invalid_audience"),
        (lambda now: claims(iss="elsewhere"), "invalid_issuer"),
        (lambda now: claims(exp=None), "missing_claim"),
        (lambda now: claims(sub=None), "missing_claim"),
    ],
    ids=["expired", "not_yet_valid", "audience", "issuer", "no_exp", "no_sub"],
)
def test_each_bad_claim_is_refused_with_its_reason(settings, make_claims, expected):
    token_claims = make_claims(int(time.time()))
    assert reason(settings, jwt.encode(token_claims, SECRET, algorithm="HS256")) == expected


def test_a_token_signed_with_another_key_has_an_invalid_signature(settings):
    token = jwt.encode(claims(), "another-secret-" + "y" * 60, algorithm="HS256")
    assert reason(settings, token) == "invalid_signature"


def test_a_tampered_payload_has_an_invalid_signature(settings):
    header, _, signature = jwt.encode(claims(), SECRET, algorithm="HS256").split(".")
    forged_payload = jwt.utils.base64url_encode(b'{"sub":"mallory","exp":9999999999}').decode()
    assert reason(settings, f"{header}.{forged_payload}.{signature}") == "invalid_signature"


def test_the_none_algorithm_is_refused(settings):
    token = jwt.encode(claims(), None, algorithm="none")
    assert reason(settings, token) == "unsupported_algorithm"


def test_an_unpinned_algorithm_is_refused(settings):
    assert (
        reason(settings, jwt.encode(claims(), SECRET, algorithm="HS512")) == "unsupported_algorithm"
    )


def test_rs_to_hs_confusion_is_refused():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    settings = load_settings(jwt_public_key=public_pem.decode(), jwt_algorithms=["RS256"])
    good = jwt.encode(claims(aud=None, iss=None), key, algorithm="RS256")
    assert Authenticator(settings).authenticate(good).user_id == "alice"
    # The classic confusion: sign HS256 with the public key as the HMAC secret.
    header = jwt.utils.base64url_encode(b'{"alg":"HS256","typ":"JWT"}').decode()
    payload = jwt.utils.base64url_encode(b'{"sub":"mallory","exp":9999999999}').decode()
    signature = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    forged = f"{header}.{payload}.{jwt.utils.base64url_encode(signature).decode()}"
    assert reason(settings, forged) == "unsupported_algorithm"


@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c", "....", "x" * 5000])
def test_garbage_is_a_malformed_token(settings, token):
    assert reason(settings, token) == "malformed_token"


def test_the_token_is_taken_from_the_bearer_subprotocol():
    assert token_from_handshake(["vigil.v1", "bearer.abc.def.ghi"], {}, {}) == "abc.def.ghi"


def test_the_token_is_taken_from_the_authorization_header():
    headers = {"authorization": "Bearer abc.def.ghi"}
    assert token_from_handshake(["vigil.v1"], headers, {}) == "abc.def.ghi"


def test_a_handshake_without_vigil_v1_is_a_bad_request():
    with pytest.raises(AuthRefusal) as caught:
        token_from_handshake(["bearer.abc"], {}, {})
    assert (caught.value.status, caught.value.reason) == (400, "unsupported_protocol")


def test_a_token_in_the_query_string_is_refused():
    with pytest.raises(AuthRefusal) as caught:
        token_from_handshake(["vigil.v1"], {}, {"token": "abc.def.ghi"})
    assert caught.value.status == 401


def test_no_token_at_all_is_missing_token():
    with pytest.raises(AuthRefusal) as caught:
        token_from_handshake(["vigil.v1"], {"authorization": "Basic Zm9v"}, {})
    assert caught.value.reason == "missing_token"
