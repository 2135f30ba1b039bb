"""JWT authentication for the socket and the REST API.

``authenticate`` turns a token into an ``Identity`` or an ``AuthRefusal`` carrying the
documented HTTP status and reason code (PROTOCOL.md). The token itself never leaves this
module: refusals and logs carry the reason only.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from core.protocol import SUBPROTOCOL
from core.settings import Settings, TokenSettings

# The JWT "roles" claim grants this one to operators' tools (the sidecar's drain request).
OPERATOR_ROLE = "operator"
BEARER_SUBPROTOCOL_PREFIX = "bearer."

# The order matters: subclasses before the classes they extend.
_REFUSAL_BY_EXCEPTION: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "token_expired"),
    (jwt.ImmatureSignatureError, "token_not_yet_valid"),
    (jwt.InvalidAudienceError, "invalid_audience"),
    (jwt.InvalidIssuerError, "invalid_issuer"),
    (jwt.MissingRequiredClaimError, "missing_claim"),
    (jwt.InvalidAlgorithmError, "unsupported_algorithm"),
    (jwt.InvalidSignatureError, "invalid_signature"),
    (jwt.InvalidKeyError, "invalid_signature"),
    (jwt.DecodeError, "malformed_token"),
)


@dataclass(frozen=True)
class Identity:
    user_id: str
    expires_at: float
    canary: bool
    roles: frozenset[str] = frozenset()


class AuthRefusal(Exception):
    """A refused handshake or request: HTTP status, error word and reason code."""

    def __init__(self, status: int, error: str, reason: str) -> None:
        super().__init__(f"{status} {error}: {reason}")
        self.status = status
        self.error = error
        self.reason = reason

    def body(self) -> dict[str, str]:
        return {"error": self.error, "reason": self.reason}


def unauthenticated(reason: str) -> AuthRefusal:
    return AuthRefusal(401, "unauthenticated", reason)


def forbidden(reason: str) -> AuthRefusal:
    return AuthRefusal(403, "forbidden", reason)


def bad_protocol() -> AuthRefusal:
    return AuthRefusal(400, "bad_request", "unsupported_protocol")


def not_ready() -> AuthRefusal:
    return AuthRefusal(503, "unavailable", "not_ready")


def token_from_handshake(
    subprotocols: Sequence[str], headers: Mapping[str, str], query_params: Mapping[str, str]
) -> str:
    """Find the bearer token of a handshake, refusing the places it must not be."""
    if any(name in query_params for name in ("token", "access_token", "jwt")):
        # Tokens in URLs end up in access logs; refuse rather than accept them quietly.
        raise unauthenticated("missing_token")
    if SUBPROTOCOL not in subprotocols:
        raise bad_protocol()
    for offered in subprotocols:
        if offered.startswith(BEARER_SUBPROTOCOL_PREFIX):
            return offered[len(BEARER_SUBPROTOCOL_PREFIX) :]
    return token_from_headers(headers)


def token_from_headers(headers: Mapping[str, str]) -> str:
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise unauthenticated("missing_token")
    return credentials.strip()


class Authenticator:
    """Verifies tokens with the configured key and pinned algorithms."""

    def __init__(self, settings: Settings) -> None:
        self._key = settings.signing_key
        self._algorithms = list(settings.jwt_algorithms)
        self._audience = settings.jwt_audience
        self._issuer = settings.jwt_issuer

    def authenticate(self, token: str) -> Identity:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as exc:
            raise unauthenticated("malformed_token") from exc
        if header.get("alg") not in self._algorithms:
            # Covers "none" and HS/RS confusion before any key is used.
            raise unauthenticated("unsupported_algorithm")
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=self._algorithms,
                audience=self._audience,
                issuer=self._issuer,
                options={"require": ["exp", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise unauthenticated(_reason_for(exc)) from exc
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject.strip():
            raise unauthenticated("missing_claim")
        roles = claims.get("roles")
        return Identity(
            user_id=subject,
            expires_at=float(claims["exp"]),
            canary=claims.get("canary") is True,
            roles=frozenset(r for r in roles if isinstance(r, str))
            if isinstance(roles, list)
            else frozenset(),
        )


def _reason_for(exc: jwt.PyJWTError) -> str:
    for exception_type, reason in _REFUSAL_BY_EXCEPTION:
        if isinstance(exc, exception_type):
            return reason
    return "malformed_token"


def issue_token(
    settings: TokenSettings,
    user_id: str,
    *,
    ttl_s: float = 3600,
    extra_claims: Mapping[str, Any] | None = None,
) -> str:
    """Sign a token with the configured secret (HS*); RS/ES deployments mint tokens elsewhere."""
    if settings.jwt_public_key:
        raise ValueError("tokens for RS*/ES* keys are issued by your identity provider")
    now = int(time.time())
    claims: dict[str, Any] = {"sub": user_id, "iat": now, "exp": now + int(ttl_s)}
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    claims.update(extra_claims or {})
    return jwt.encode(claims, settings.signing_key, algorithm=settings.jwt_algorithms[0])
