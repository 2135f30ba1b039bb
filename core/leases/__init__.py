"""Run leases: each replica holds a lease on the runs it executes (``LeaseKeeper``), and
ends the runs of a replica that stopped renewing (``OrphanReaper``). docs/scaling.md."""

from __future__ import annotations

import os
import socket
import uuid

from core.leases.keeper import LeaseKeeper
from core.leases.reaper import OrphanReaper, phase_of

__all__ = ["LeaseKeeper", "OrphanReaper", "new_replica_id", "phase_of"]


def new_replica_id(configured: str | None) -> str:
    """Unique per process start: a restarted pod with the same name must not mistake its
    previous life's runs for its own."""
    base = (configured or socket.gethostname() or "replica")[:80]
    return f"{base}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
