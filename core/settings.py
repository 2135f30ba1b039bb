"""Settings from the environment (prefix ``VIGIL_``), validated once at start-up.

A bad setting never surfaces later as a confusing runtime error: ``load_settings`` raises
``SettingsError`` naming the variable and the cause, and the CLI turns it into one line on
stderr and a non-zero exit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, TypeVar

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Used only in dev mode, so a newcomer can connect without configuring anything.
# Production refuses to start without a real key (see `_key_required_outside_dev`).
DEV_JWT_SECRET = "vigil-dev-secret-not-for-production-use-0123456789"  # noqa: S105

SUPPORTED_DB_DRIVERS = {"sqlite+aiosqlite", "postgresql+asyncpg"}

_S = TypeVar("_S", bound="TokenSettings")


class SettingsError(Exception):
    """A setting is invalid; ``setting`` is the environment variable to fix."""

    def __init__(self, setting: str, cause: str) -> None:
        super().__init__(f"{setting}: {cause}")
        self.setting = setting
        self.cause = cause


class TokenSettings(BaseSettings):
    """The mode and the JWT settings: all that signs or verifies a token. The sidecar reads
    only these (to mint the canary's tokens), so it never loads the database stack."""

    model_config = SettingsConfigDict(env_prefix="VIGIL_", extra="ignore", frozen=True)

    mode: Literal["dev", "production"] = "dev"
    jwt_secret: str | None = None
    jwt_public_key: str | None = None
    jwt_algorithms: list[str] = ["HS256"]
    jwt_audience: str | None = None
    jwt_issuer: str | None = None

    @field_validator("jwt_algorithms")
    @classmethod
    def _no_none_algorithm(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one algorithm is required")
        if any(alg.lower() == "none" for alg in value):
            raise ValueError("the 'none' algorithm is never accepted")
        return value

    @model_validator(mode="after")
    def _key_required_outside_dev(self) -> TokenSettings:
        if self.mode == "production" and not (self.jwt_secret or self.jwt_public_key):
            raise ValueError(
                "VIGIL_JWT_SECRET or VIGIL_JWT_PUBLIC_KEY is required when VIGIL_MODE=production"
            )
        return self

    @property
    def signing_key(self) -> str:
        """The key tokens are verified with (and, for HS*, signed with)."""
        if self.jwt_public_key:
            return self.jwt_public_key
        return self.jwt_secret or DEV_JWT_SECRET


class Settings(TokenSettings):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    database_url: str = "sqlite+aiosqlite:///./vigil.db"
    db_connect_timeout_s: float = Field(default=5.0, gt=0)
    db_pool_size: int = Field(default=10, ge=1)
    db_pool_overflow: int = Field(default=10, ge=0)
    redis_url: str | None = None
    # Event log (docs/scaling.md): Redis Streams when redis_url is set, in-process otherwise.
    redis_key_prefix: str = Field(default="vigil:", min_length=1, max_length=64)
    event_log_max_events: int = Field(default=1000, ge=1)
    event_log_max_age_s: float = Field(default=3600.0, gt=0)
    event_log_max_threads: int = Field(default=10_000, ge=1)
    # The in-process log's total across threads (its events' JSON plus bookkeeping): past
    # it, the threads least recently appended to are forgotten (their resumes read the db).
    event_log_max_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
    # Run leases: a replica that stops renewing for lease_ttl_s loses its runs to another.
    replica_id: str | None = Field(default=None, min_length=1, max_length=64)
    lease_ttl_s: float = Field(default=6.0, gt=0)
    lease_renew_interval_s: float = Field(default=2.0, gt=0)
    lease_sweep_interval_s: float = Field(default=2.0, gt=0)
    # SIGTERM: runs in flight get this long to finish before they end with reason shutdown.
    shutdown_grace_s: float = Field(default=20.0, ge=0)

    provider: Literal["offline", "openai"] = "offline"
    openai_base_url: str = "https://api.openai.com/v1"
    openai_api_key: str | None = None
    openai_model: str = "gpt-4o-mini"
    provider_timeout_s: float = Field(default=20.0, gt=0)
    # Simulated model latency of the offline provider (demos, load and failover tests).
    offline_latency_s: float = Field(default=0.0, ge=0)

    # Agent runs.
    max_runs_per_user: int = Field(default=3, ge=1)
    max_runs_total: int = Field(default=500, ge=1)
    run_timeout_s: float = Field(default=30.0, gt=0)
    preflight_timeout_s: float = Field(default=5.0, gt=0)
    triage_timeout_s: float = Field(default=2.0, gt=0)
    model_call_timeout_s: float = Field(default=20.0, gt=0)
    tool_timeout_s: float = Field(default=10.0, gt=0)
    max_agent_steps: int = Field(default=4, ge=1)
    circuit_failure_threshold: int = Field(default=5, ge=1)
    circuit_reset_timeout_s: float = Field(default=30.0, gt=0)

    # Connections.
    heartbeat_interval_s: float = Field(default=15.0, gt=0)
    max_frame_bytes: int = Field(default=64 * 1024, ge=1024)
    # Off: frames are small JSON, and each connection's deflate contexts (compress and
    # decompress) hold about 100 KB of memory for as long as it stays open.
    ws_per_message_deflate: bool = False
    max_text_chars: int = Field(default=8000, ge=1)
    rate_limit_per_s: float = Field(default=20.0, gt=0)
    rate_limit_burst: int = Field(default=40, ge=1)
    max_connections_per_user: int = Field(default=20, ge=1)
    ack_timeout_s: float = Field(default=5.0, gt=0)
    # An unacked event is sent again up to this many times, each wait for its ack this many
    # times longer than the last; then it is counted as undelivered (docs/telemetry.md).
    ack_max_redeliveries: int = Field(default=3, ge=0)
    ack_timeout_backoff: float = Field(default=2.0, ge=1)
    # Past this many events awaiting an ack, the oldest is given up (reason window_full).
    ack_window_max_events: int = Field(default=100_000, ge=1)
    # A connection whose unsent frames pass this many bytes is closed with 4409.
    send_queue_bytes: int = Field(default=4 * 1024 * 1024, ge=64 * 1024)

    # Telemetry.
    trace_buffer_spans: int = Field(default=2000, ge=1)
    # Off only to measure what metrics cost (docs/benchmarks.md); tracing's switch is the
    # standard OTEL_SDK_DISABLED=true.
    metrics_enabled: bool = True
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("database_url")
    @classmethod
    def _database_url_parses(cls, value: str) -> str:
        # Imported here: `vigil token` reads these settings and needs no database stack.
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"cannot parse database URL ({exc})") from exc
        if url.drivername not in SUPPORTED_DB_DRIVERS:
            supported = ", ".join(sorted(SUPPORTED_DB_DRIVERS))
            raise ValueError(f"unsupported driver {url.drivername!r} (use one of {supported})")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("lease_renew_interval_s")
    @classmethod
    def _renewed_before_expiry(cls, value: float, info: ValidationInfo) -> float:
        ttl = info.data.get("lease_ttl_s")
        if ttl is not None and value >= ttl:
            raise ValueError(f"must be shorter than VIGIL_LEASE_TTL_S ({ttl:g} s)")
        return value

    @model_validator(mode="after")
    def _provider_key_required_outside_dev(self) -> Settings:
        if self.provider == "openai" and not self.openai_api_key and self.mode == "production":
            raise ValueError("VIGIL_OPENAI_API_KEY is required when VIGIL_PROVIDER=openai")
        return self

    @property
    def sqlite_path(self) -> Path | None:
        from sqlalchemy.engine import make_url

        url = make_url(self.database_url)
        if url.get_backend_name() != "sqlite" or not url.database:
            return None
        return Path(url.database)


def load_settings(**overrides: object) -> Settings:
    """Read and validate settings; raise ``SettingsError`` naming the first bad variable."""
    return _load(Settings, overrides)


def load_token_settings() -> TokenSettings:
    """Only the mode and the JWT settings (what the sidecar needs), validated the same way."""
    return _load(TokenSettings, {})


def _load(model: type[_S], overrides: dict[str, object]) -> _S:
    try:
        return model(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else ""
        message = str(error["msg"]).removeprefix("Value error, ")
        if field:
            raise SettingsError(f"VIGIL_{field.upper()}", message) from exc
        # A cross-field rule names its variables in its own message.
        setting = message.partition(" is required")[0]
        raise SettingsError(setting.split(" or ")[0], message) from exc
