"""Keeping this replica's run leases alive.

A run is admitted with a lease held by this replica (``expiry()``); ``run`` renews the
leases of all this replica's running runs every ``renew_interval_s`` in one statement. A
replica that dies stops renewing, and ``lease_ttl_s`` later its runs are orphans another
replica ends (``core.leases.reaper``). A failed renewal is logged and counted; the next one
retries, and a lease survives ``lease_ttl_s / renew_interval_s - 1`` failures in a row.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

from core.db.errors import DatabaseError
from core.db.leases import LeaseRepository
from core.db.models import utc_now
from core.telemetry.logging import get_logger
from core.telemetry.replica_metrics import ReplicaMetrics

log = get_logger(__name__)


class LeaseKeeper:
    def __init__(
        self,
        leases: LeaseRepository,
        *,
        replica_id: str,
        ttl_s: float,
        renew_interval_s: float,
        metrics: ReplicaMetrics,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.replica_id = replica_id
        self._leases = leases
        self._ttl = timedelta(seconds=ttl_s)
        self._renew_interval_s = renew_interval_s
        self._metrics = metrics
        self._clock = clock

    def expiry(self) -> datetime:
        """When a lease taken or renewed now expires."""
        return self._clock() + self._ttl

    async def renew(self) -> list[str]:
        """Renew now; returns the ids of the runs whose lease was extended."""
        renewed = await self._leases.renew(self.replica_id, self.expiry())
        self._metrics.lease_renewals.labels("ok").inc()
        return renewed

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._renew_interval_s)
            try:
                await self.renew()
            except DatabaseError as exc:
                self._metrics.lease_renewals.labels("failed").inc()
                log.warning("lease_renewal_failed", category=exc.category)
            except Exception:  # noqa: BLE001 - a dead keeper would hand our runs to others
                self._metrics.lease_renewals.labels("failed").inc()
                log.exception("lease_renewal_crashed")
