"""Everything a request handler needs, built once by the app factory and passed around."""

from __future__ import annotations

from dataclasses import dataclass, field

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Tracer

from core.agent.circuit import CircuitBreaker
from core.agent.engine import Executor
from core.agent.model import ModelProvider
from core.agent.runner import AgentRunner
from core.agent.tools.registry import ToolRegistry
from core.auth import Authenticator
from core.db.database import Database
from core.db.repository import Repository
from core.publisher import EventPublisher
from core.replicas import Replica
from core.settings import Settings
from core.telemetry.metrics import Metrics
from core.telemetry.tracing import SpanBuffer
from core.ws.delivery import Deliveries
from core.ws.hub import Hub


@dataclass
class Lifecycle:
    """Readiness as the rest of the process sees it."""

    started: bool = False
    draining: bool = False

    @property
    def accepting(self) -> bool:
        return self.started and not self.draining


@dataclass
class Services:
    settings: Settings
    metrics: Metrics
    tracer_provider: TracerProvider
    tracer: Tracer
    span_buffer: SpanBuffer | None
    authenticator: Authenticator
    database: Database
    repository: Repository
    hub: Hub
    deliveries: Deliveries
    publisher: EventPublisher
    executor: Executor
    provider: ModelProvider
    tools: ToolRegistry
    circuit: CircuitBreaker
    runner: AgentRunner
    replica: Replica
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
