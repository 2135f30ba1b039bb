"""The sidecar's HTTP client against the backend's keep-alive timeout.

A request sent on a connection at the moment the backend closes it for idleness fails
("Server disconnected", a reset): with the probes every 5 s and uvicorn's 5 s keep-alive,
the sidecar lost a scrape every few minutes. Its client must let idle connections go first.
"""

from __future__ import annotations

from fastapi import FastAPI

from core.server import uvicorn_config
from core.settings import load_settings
from sidecar.runner import KEEPALIVE_EXPIRY_S


def test_the_sidecar_drops_idle_connections_well_before_the_backend_closes_them() -> None:
    backend = uvicorn_config(load_settings(), FastAPI(), port=0)
    # Half the backend's timeout leaves room for a busy loop that reads a response late.
    assert backend.timeout_keep_alive / 2 >= KEEPALIVE_EXPIRY_S
