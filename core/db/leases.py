"""``LeaseRepository``: the queries behind run leases (see core/leases/).

A running run carries the id of the replica executing it and the time its lease expires.
Each replica renews its runs' leases in one statement; a run whose lease has expired while
it is still ``running`` is an orphan (its replica died), and any other replica may take it
over with ``claim``, which is atomic: of several replicas sweeping at once, exactly one
gets each orphan.

Errors surface as the categories of ``core.db.errors``, like every other query.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select, update

from core.db.database import Database
from core.db.models import Event, Run

_NO_SYNC = {"synchronize_session": False}


@dataclass(frozen=True)
class OrphanedRun:
    """A running run whose lease has expired, and what its last stored event says."""

    id: str
    thread_id: str
    user_id: str
    client_msg_id: str
    is_canary: bool
    started_at: datetime
    replica_id: str | None
    lease_expires_at: datetime
    last_event_type: str | None
    last_event_data: dict[str, object] | None
    last_event_at: datetime | None = None


class LeaseRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def renew(self, replica_id: str, expires_at: datetime) -> list[str]:
        """Extend the lease of every running run of this replica; returns their ids."""
        # The rows are locked in id order, the order a batch of events locks its runs in
        # (Repository.append_events): locked in scan order, a renewal and a batch could
        # each hold a run the other waits for (PostgreSQL reports a deadlock).
        ours = (
            select(Run.id)
            .where(Run.replica_id == replica_id, Run.status == "running")
            .order_by(Run.id)
            .with_for_update()
        )
        async with self._db.session("renew_leases", write=True) as session:
            rows = await session.scalars(
                update(Run)
                .where(Run.id.in_(ours))
                .values(lease_expires_at=expires_at)
                .returning(Run.id)
                .execution_options(**_NO_SYNC)
            )
            return list(rows)

    async def expired(
        self, *, now: datetime, limit: int, excluding: str | None = None
    ) -> list[OrphanedRun]:
        """Running runs whose lease expired before ``now``, oldest expiry first, each with
        its last stored event (which tells the phase it was in). ``excluding`` leaves out
        the runs of that replica (the sweeping one's own: they are still running there,
        only its renewals failed), in the query itself, so however many of them expired
        they never fill the batch ahead of other replicas' orphans."""
        conditions = [Run.status == "running", Run.lease_expires_at < now]
        if excluding is not None:
            # NULL != x is NULL in SQL: a run with no replica recorded is still an orphan.
            conditions.append(or_(Run.replica_id.is_(None), Run.replica_id != excluding))
        async with self._db.session("find_orphaned_runs") as session:
            runs = (
                await session.scalars(
                    select(Run).where(*conditions).order_by(Run.lease_expires_at).limit(limit)
                )
            ).all()
            orphans = []
            for run in runs:
                last = await session.scalar(
                    select(Event)
                    .where(Event.thread_id == run.thread_id, Event.run_id == run.id)
                    .order_by(Event.seq.desc())
                    .limit(1)
                )
                assert run.lease_expires_at is not None  # the WHERE clause compared it
                orphans.append(
                    OrphanedRun(
                        id=run.id,
                        thread_id=run.thread_id,
                        user_id=run.user_id,
                        client_msg_id=run.client_msg_id,
                        is_canary=run.is_canary,
                        started_at=run.started_at,
                        replica_id=run.replica_id,
                        lease_expires_at=run.lease_expires_at,
                        last_event_type=None if last is None else last.type,
                        last_event_data=None if last is None else last.payload.get("data"),
                        last_event_at=None if last is None else last.created_at,
                    )
                )
            return orphans

    async def claim(
        self, run_id: str, replica_id: str, *, now: datetime, expires_at: datetime
    ) -> bool:
        """Take over an orphan: true for exactly one caller while the run is running and
        its lease still expired; false if it finished or another replica claimed it."""
        async with self._db.session("claim_run", write=True) as session:
            claimed = await session.scalar(
                update(Run)
                .where(Run.id == run_id, Run.status == "running", Run.lease_expires_at < now)
                .values(replica_id=replica_id, lease_expires_at=expires_at)
                .returning(Run.id)
                .execution_options(**_NO_SYNC)
            )
            return claimed is not None
