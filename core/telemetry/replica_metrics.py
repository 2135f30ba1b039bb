"""Instruments of the multi-replica machinery: the event log, run leases, orphaned runs.

Registered on the app's own registry (``Metrics.registry``), beside the SLI instruments of
``core.telemetry.metrics``; documented in docs/telemetry.md and docs/scaling.md.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from core.eventlog.memory import EVICT_REASONS
from core.telemetry.instruments import Counter, Histogram

TAKEOVER_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 4, 5, 7.5, 10, 30)


class ReplicaMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.eventlog_errors = Counter(
            "vigil_eventlog_errors",
            "Event log failures (the event stays stored and is still sent), by operation.",
            ["backend", "operation"],
            registry=registry,
        )
        self.eventlog_evictions = Counter(
            "vigil_eventlog_evictions",
            "Threads the in-process event log forgot to stay within a bound (their resumes "
            "read the database), by bound.",
            ["reason"],
            registry=registry,
        )
        self.resume_sources = Counter(
            "vigil_resume_replays",
            "Resume replays by where their events came from (log or database).",
            ["source"],
            registry=registry,
        )
        self.lease_renewals = Counter(
            "vigil_lease_renewals",
            "Renewals of this replica's run leases, by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.runs_orphaned = Counter(
            "vigil_runs_orphaned",
            "Runs of a lost replica this replica ended (replica_lost), by phase.",
            ["phase"],
            registry=registry,
        )
        self.orphan_takeover = Histogram(
            "vigil_orphan_takeover_seconds",
            "From an orphaned run's lease expiry to its takeover by this replica.",
            buckets=TAKEOVER_BUCKETS,
            registry=registry,
        )
        for reason in EVICT_REASONS:
            self.eventlog_evictions.labels(reason)
        for source in ("log", "database"):
            self.resume_sources.labels(source)
        for outcome in ("ok", "failed"):
            self.lease_renewals.labels(outcome)
