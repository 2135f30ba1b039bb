"""Event log backends: in-process (embedded default) and Redis Streams (replicas share it).

``build_event_log`` picks the backend from the settings: ``VIGIL_REDIS_URL`` set means
Redis. See ``core.eventlog.base`` for the interface and docs/scaling.md for the design.
"""

from __future__ import annotations

from core.eventlog.base import EventLog, LogRead, OnError
from core.eventlog.memory import InProcessEventLog, OnEvict
from core.eventlog.redis_streams import RedisStreamEventLog
from core.settings import Settings

__all__ = [
    "EventLog",
    "InProcessEventLog",
    "LogRead",
    "OnEvict",
    "RedisStreamEventLog",
    "build_event_log",
]


def build_event_log(
    settings: Settings, *, replica_id: str, on_error: OnError, on_evict: OnEvict
) -> EventLog:
    """``on_evict`` hears of each thread the in-process log forgets to stay within its
    bounds; Redis bounds its streams itself (count, age and key expiry)."""
    if settings.redis_url:
        return RedisStreamEventLog(
            settings.redis_url,
            prefix=settings.redis_key_prefix,
            replica_id=replica_id,
            max_events=settings.event_log_max_events,
            max_age_s=settings.event_log_max_age_s,
            on_error=on_error,
        )
    return InProcessEventLog(
        max_events=settings.event_log_max_events,
        max_age_s=settings.event_log_max_age_s,
        max_threads=settings.event_log_max_threads,
        max_bytes=settings.event_log_max_bytes,
        on_evict=on_evict,
    )
