"""Ending the runs of a lost replica, so no client waits for a run that is gone.

Every ``sweep_interval_s``, each replica looks for running runs whose lease expired (their
replica stopped renewing: killed, frozen, cut off from the database). It claims each one
atomically (``LeaseRepository.claim``: one replica wins), then ends it through the normal
publisher, so the events are sequenced, stored, logged and sent like any other:
a ``tool_completed`` with status ``error`` closing the tool call it was in (when its last
stored event is ``tool_executing``), ``agent_error`` reason ``replica_lost`` (``phase``:
where the run was, read from its last stored event, or ``unknown``) and ``agent_completed``
status ``failed``; then the run row.

A detection therefore comes at most ``lease_ttl_s + sweep_interval_s`` after the replica's
last renewal (plus the time of the queries). The claim is held under ``<replica>/reaper``,
a holder the keeper never renews: if ending the run fails, the claim expires and the next
sweep, here or on another replica, tries again, emitting only what the run still lacks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

from core.agent.context import UserExecutionContext
from core.agent.endings import closing_tool_completed, completed_data
from core.db.errors import DatabaseError
from core.db.leases import LeaseRepository, OrphanedRun
from core.db.models import utc_now
from core.db.repository import Repository
from core.publisher import EventPublisher
from core.telemetry.logging import get_logger
from core.telemetry.metrics import Metrics
from core.telemetry.replica_metrics import ReplicaMetrics

log = get_logger(__name__)

SWEEP_BATCH = 100
REASON = "replica_lost"
# The phase a run is in right after each kind of event it emitted.
_PHASE_AFTER = {
    "agent_started": "triage",
    "agent_thinking": "model_call",
    "tool_executing": "tool_call",
    "tool_completed": "model_call",
}
_TIMEOUT_REASONS = {"run_timeout", "phase_timeout"}


def phase_of(last_event_type: str | None) -> str:
    """Where a run was, judged by its last stored event (none yet: still in preflight)."""
    if last_event_type is None:
        return "preflight"
    return _PHASE_AFTER.get(last_event_type, "unknown")


class OrphanReaper:
    def __init__(
        self,
        leases: LeaseRepository,
        repository: Repository,
        publisher: EventPublisher,
        *,
        replica_id: str,
        ttl_s: float,
        sweep_interval_s: float,
        metrics: Metrics,
        replica_metrics: ReplicaMetrics,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._leases = leases
        self._repository = repository
        self._publisher = publisher
        self._replica_id = replica_id
        self._holder = f"{replica_id}/reaper"
        self._ttl = timedelta(seconds=ttl_s)
        self._sweep_interval_s = sweep_interval_s
        self._metrics = metrics
        self._replica_metrics = replica_metrics
        self._clock = clock

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval_s)
            try:
                await self.sweep()
            except DatabaseError as exc:
                log.warning("orphan_sweep_failed", category=exc.category)
            except Exception:  # noqa: BLE001 - a dead sweep would leave lost runs unended
                self._metrics.internal_errors.labels("orphan_sweep").inc()
                log.exception("orphan_sweep_crashed")

    async def sweep(self) -> list[str]:
        """End every orphaned run this replica can claim; returns their ids."""
        ended = []
        # This replica's own runs are left out by the query: they still run here, only our
        # renewals failed (they will retry).
        orphans = await self._leases.expired(
            now=self._clock(), limit=SWEEP_BATCH, excluding=self._replica_id
        )
        for orphan in orphans:
            # The clock is read per claim: ending the previous orphans took time, and a
            # claim must not start with a lease that is already (nearly) over.
            now = self._clock()
            claimed = await self._leases.claim(
                orphan.id, self._holder, now=now, expires_at=now + self._ttl
            )
            if not claimed:
                continue  # It finished, or another replica took it.
            self._replica_metrics.orphan_takeover.observe(
                max(0.0, (now - orphan.lease_expires_at).total_seconds())
            )
            await self._end(orphan, now)
            ended.append(orphan.id)
        return ended

    async def _end(self, orphan: OrphanedRun, now: datetime) -> None:
        ctx = UserExecutionContext(
            user_id=orphan.user_id,
            thread_id=orphan.thread_id,
            run_id=orphan.id,
            request_id=f"reaper:{self._replica_id}",
            client_msg_id=orphan.client_msg_id,
            text="",
            canary=orphan.is_canary,
            lease_holder=self._holder,
        )
        duration_ms = max(0.0, (now - orphan.started_at).total_seconds() * 1000)
        data = orphan.last_event_data or {}
        status = "failed"
        if orphan.last_event_type == "agent_error":
            # It died while ending: the error is out, only the completion is missing.
            phase = str(data.get("phase", "unknown"))
            if data.get("reason") in _TIMEOUT_REASONS:
                status = "timeout"
        elif orphan.last_event_type != "agent_completed":
            phase = phase_of(orphan.last_event_type)
            if orphan.last_event_type == "tool_executing":
                # Cut off mid-tool: the call gets its tool_completed before the run ends.
                since = orphan.last_event_at or orphan.started_at
                await self._publisher.emit(
                    ctx,
                    "tool_completed",
                    closing_tool_completed(
                        str(data.get("tool", "unknown")),
                        str(data.get("call_id", "")),
                        REASON,
                        (now - since).total_seconds() * 1000,
                    ),
                    ending=True,
                )
            await self._publisher.emit(
                ctx,
                "agent_error",
                {
                    "reason": REASON,
                    "phase": phase,
                    "message": "the server running this run was lost; send the message again",
                },
                ending=True,
            )
        else:
            phase = "completed"
            status = str(data.get("status", "failed"))
        if orphan.last_event_type != "agent_completed":
            data = completed_data(status, duration_ms)
            await self._publisher.emit(ctx, "agent_completed", data, ending=True)
        await self._repository.finish_run(
            orphan.id,
            status=status,
            duration_ms=duration_ms,
            input_tokens=0,
            output_tokens=0,
            answer_text=None,
            error_category=None,
            error_reason=None if orphan.last_event_type == "agent_completed" else REASON,
            lease_holder=self._holder,
        )
        if not orphan.is_canary:
            self._metrics.runs.labels(status).inc()
        self._replica_metrics.runs_orphaned.labels(phase).inc()
        log.warning(
            "orphaned_run_ended",
            run_id=orphan.id,
            thread_id=orphan.thread_id,
            lost_replica=orphan.replica_id,
            phase=phase,
            status=status,
            lease_expired_s_ago=round((now - orphan.lease_expires_at).total_seconds(), 3),
        )
