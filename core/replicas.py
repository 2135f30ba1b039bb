"""What makes a backend one replica among several: its id, the shared event log and its
fan-out, the leases on its runs and the sweep that ends a lost replica's runs.

Built by the app factory (``build_replica``), started and stopped by the lifespan. With
``VIGIL_REDIS_URL`` unset it is a single process: the in-process log, no fan-out, and the
leases still end runs a crashed previous process left ``running``. docs/scaling.md.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from core.db.database import Database
from core.db.leases import LeaseRepository
from core.db.repository import Repository
from core.eventlog import EventLog, build_event_log
from core.eventlog.base import Deliver, OnAck
from core.leases import LeaseKeeper, OrphanReaper, new_replica_id
from core.protocol import AgentEvent
from core.publisher import EventPublisher
from core.settings import Settings
from core.telemetry.logging import get_logger
from core.telemetry.metrics import Metrics
from core.telemetry.replica_metrics import ReplicaMetrics
from core.ws.delivery import Deliveries
from core.ws.hub import Hub

log = get_logger(__name__)


@dataclass
class Replica:
    id: str
    event_log: EventLog
    metrics: ReplicaMetrics
    leases: LeaseKeeper
    reaper: OrphanReaper | None = None  # Needs the publisher, which needs the event log.


def build_replica(settings: Settings, database: Database, metrics: Metrics) -> Replica:
    replica_id = new_replica_id(settings.replica_id)
    replica_metrics = ReplicaMetrics(metrics.registry)
    event_log = build_event_log(
        settings,
        replica_id=replica_id,
        on_error=lambda backend, op: replica_metrics.eventlog_errors.labels(backend, op).inc(),
        on_evict=lambda reason: replica_metrics.eventlog_evictions.labels(reason).inc(),
    )
    keeper = LeaseKeeper(
        LeaseRepository(database),
        replica_id=replica_id,
        ttl_s=settings.lease_ttl_s,
        renew_interval_s=settings.lease_renew_interval_s,
        metrics=replica_metrics,
    )
    return Replica(replica_id, event_log, replica_metrics, keeper)


def attach_reaper(
    replica: Replica,
    settings: Settings,
    *,
    database: Database,
    repository: Repository,
    publisher: EventPublisher,
    metrics: Metrics,
) -> None:
    replica.reaper = OrphanReaper(
        LeaseRepository(database),
        repository,
        publisher,
        replica_id=replica.id,
        ttl_s=settings.lease_ttl_s,
        sweep_interval_s=settings.lease_sweep_interval_s,
        metrics=metrics,
        replica_metrics=replica.metrics,
    )


def remote_delivery(hub: Hub, deliveries: Deliveries) -> Deliver:
    """Events another replica emitted go to this replica's connections that follow their
    thread, with acks and redelivery tracked here; the emitting replica counted them."""

    def deliver(user_id: str, event: AgentEvent) -> None:
        if hub.followed(user_id, event.thread_id):
            deliveries.emitted(user_id, event, counted=False)

    return deliver


def remote_ack(deliveries: Deliveries) -> OnAck:
    """An ack a client sent to another replica retires what this replica emitted (and
    counts it, since this replica counted the emission)."""

    def on_ack(thread_id: str, seq: int) -> None:
        deliveries.acked(thread_id, seq)

    return on_ack


async def start_replica(
    replica: Replica, deliver: Deliver, on_ack: OnAck
) -> list[asyncio.Task[None]]:
    await replica.event_log.start(deliver, on_ack)
    tasks = [asyncio.create_task(replica.leases.run(), name="lease-keeper")]
    if replica.reaper is not None:
        tasks.append(asyncio.create_task(replica.reaper.run(), name="orphan-reaper"))
    log.info("replica_started", replica_id=replica.id, event_log=replica.event_log.backend)
    return tasks


async def stop_replica(replica: Replica, tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await replica.event_log.close()
