"""The REST API: the caller's threads and events, health, readiness and metrics."""
