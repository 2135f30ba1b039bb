"""Run leases: the replica that executes a run, and until when its lease holds.

A replica renews the leases of its running runs; another replica ends a running run whose
lease has expired (its replica died) with ``agent_error`` reason ``replica_lost``
(core/leases/, docs/scaling.md). Runs admitted before this revision have no lease and are
left alone.

Revision ID: 0002_run_leases
Revises: 0001_initial
Create Date: 2026-11-26 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_run_leases"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("replica_id", sa.String(128), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index(op.f("ix_runs_status_lease_expires_at"), ["status", "lease_expires_at"])


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_index(op.f("ix_runs_status_lease_expires_at"))
        batch.drop_column("lease_expires_at")
        batch.drop_column("replica_id")
