"""Leases on this replica's runs: taken at admission, renewed by the keeper."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry

from core.client import VigilClient
from core.db.database import Database
from core.db.leases import LeaseRepository
from core.db.models import utc_now
from core.db.repository import Repository
from core.leases import LeaseKeeper
from core.telemetry.replica_metrics import ReplicaMetrics
from tests.fixtures.databases import unique_name
from tests.fixtures.servers import LiveServer

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def test_a_chat_admits_its_run_leased_to_this_replica(start_server):
    server: LiveServer = await start_server(offline_latency_s=0.5)
    async with VigilClient.connect(server.ws_url, server.token("ivy")) as client:
        accepted = await client.chat("What is 17 * 23?", msg_id="lease-1")
        record = await server.services.repository.find_run("ivy", "lease-1")

    assert record is not None and record.id == accepted["run_id"]
    assert record.replica_id == server.services.replica.id
    assert record.lease_expires_at is not None and record.lease_expires_at > utc_now()


async def test_renewal_moves_the_expiry_of_this_replicas_running_runs(migrated_db: Database):
    now = [T0]
    registry = CollectorRegistry()
    keeper = LeaseKeeper(
        LeaseRepository(migrated_db),
        replica_id=unique_name("replica"),
        ttl_s=6,
        renew_interval_s=2,
        metrics=ReplicaMetrics(registry),
        clock=lambda: now[0],
    )
    repository = Repository(migrated_db)
    user = unique_name("user")
    await repository.ensure_user(user)
    thread = await repository.create_thread(user, "title")
    run, _ = await repository.admit_run(
        run_id=unique_name("run"),
        thread_id=thread.id,
        user_id=user,
        client_msg_id="m",
        text="hi",
        is_canary=False,
        replica_id=keeper.replica_id,
        lease_expires_at=keeper.expiry(),
    )
    now[0] = T0 + timedelta(seconds=5)

    assert await keeper.renew() == [run.id]
    record = await repository.find_run(user, "m")
    assert record is not None and record.lease_expires_at == T0 + timedelta(seconds=11)
    assert registry.get_sample_value("vigil_lease_renewals_total", {"outcome": "ok"}) == 1
