"""Idle connections with heartbeats on one backend process (docs/benchmarks.md, "idle"):
as many as the machine allows, up to 10,000; the backend's RSS per connection and the
heartbeat RTT p99 the backend itself measured (vigil_heartbeat_rtt_seconds).

The file-descriptor limit is raised to the hard limit here (the backend inherits it). The
clients are the project's client in the test process, which answers every ping."""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import time
from collections import Counter

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from core.client import HandshakeRefused, VigilClient
from tests.bench.common import (
    backend,
    histogram_quantile,
    metric_samples,
    metric_sum,
    rss_bytes,
    scaled,
)
from tests.bench.report import Figure, record

pytestmark = pytest.mark.bench

TARGET = scaled(10_000, 100)
# Of those, raw clients that do not offer permessage-deflate, measured apart: the deflate
# state is the largest part of an idle connection's memory.
PLAIN = scaled(2_000, 20)
HEARTBEAT_S = 5.0
HOLD_S = 3 * HEARTBEAT_S
RSS_TARGET_BYTES = 40 * 1024


def raise_fd_limit(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new = hard if hard == resource.RLIM_INFINITY else min(hard, max(soft, wanted))
    resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return new


async def open_many(ws_url: str, tokens: list[str], errors: Counter[str]) -> list[VigilClient]:
    gate = asyncio.Semaphore(100)
    clients: list[VigilClient] = []
    stop = asyncio.Event()

    async def one(token: str) -> None:
        if stop.is_set():
            return
        async with gate:
            try:
                clients.append(await VigilClient.open(ws_url, token, open_timeout=60))
            except HandshakeRefused as refusal:
                errors[f"refused:{refusal.reason}"] += 1
            except OSError as exc:
                errors[f"{type(exc).__name__}:{exc.errno}"] += 1
                if exc.errno == 24:  # EMFILE: this machine's limit is reached
                    stop.set()
            except (TimeoutError, ConnectionError) as exc:
                errors[type(exc).__name__] += 1

    await asyncio.gather(*(one(token) for token in tokens))
    return clients


async def open_plain(ws_url: str, tokens: list[str]) -> list[ClientConnection]:
    """Raw connections without compression; each answers pings (a task per connection)."""
    gate = asyncio.Semaphore(100)
    opened: list[ClientConnection] = []

    async def answer(ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                frame = json.loads(raw)
                if frame.get("type") == "ping":
                    await ws.send(json.dumps({"type": "pong", "ts": frame["ts"]}))

    async def one(token: str) -> None:
        async with gate:
            ws = await connect(
                ws_url, subprotocols=["vigil.v1", f"bearer.{token}"],  # type: ignore[list-item]
                compression=None, ping_interval=None, open_timeout=60,
            )  # fmt: skip
            json.loads(await ws.recv())
            opened.append(ws)
            tasks.append(asyncio.create_task(answer(ws)))

    tasks: list[asyncio.Task[None]] = []
    await asyncio.gather(*(one(token) for token in tokens))
    return opened


async def test_idle_connections_with_heartbeats(sqlite_url):
    limit = raise_fd_limit(2 * TARGET + 1000)
    env = {"VIGIL_HEARTBEAT_INTERVAL_S": str(HEARTBEAT_S)}
    with backend(sqlite_url, **env) as vigil:
        tokens = [vigil.token(f"idle-{i}") for i in range(TARGET)]
        warm = await open_many(vigil.ws_url, tokens[:20], Counter())
        for client in warm:
            await client.close()
        await asyncio.sleep(2)
        rss_base = rss_bytes(vigil.pid)
        plain = await open_plain(vigil.ws_url, tokens[20 : 20 + PLAIN])
        await asyncio.sleep(2)
        rss_before = rss_bytes(vigil.pid)
        errors: Counter[str] = Counter()
        began = time.monotonic()
        clients = await open_many(vigil.ws_url, tokens[20 + PLAIN :], errors)
        connect_s = time.monotonic() - began
        await asyncio.sleep(HOLD_S)
        rss_after = rss_bytes(vigil.pid)
        active = metric_sum(vigil.base_url, "vigil_ws_active_connections")
        p99, pongs = histogram_quantile(vigil.base_url, "vigil_heartbeat_rtt_seconds", 0.99)
        p50, _ = histogram_quantile(vigil.base_url, "vigil_heartbeat_rtt_seconds", 0.50)
        timeouts = sum(
            v
            for (name, labels), v in metric_samples(vigil.base_url).items()
            if name == "vigil_ws_disconnects_total" and dict(labels).get("code") == "4408"
        )
        still_open = sum(1 for c in clients if c.websocket.close_code is None)
        await asyncio.gather(*(c.close() for c in clients), *(ws.close() for ws in plain))
    n = len(clients)
    per_plain = (rss_before - rss_base) / max(len(plain), 1)
    per_connection = (rss_after - rss_before) / max(n, 1)
    figures = [
        Figure("connections held on one process (asked for)",
               f"{n + len(plain):,} ({TARGET - 20:,}): {n:,} project clients (deflate) + "
               f"{len(plain):,} raw without deflate",
               "up to 10,000", n + len(plain) >= TARGET - 20),
        Figure("connect errors", str(dict(errors) or 0)),
        Figure("project clients open after the hold / backend gauge (all)",
               f"{still_open:,} / {active:,.0f}"),
        Figure("time to open them all", f"{connect_s:.1f} s ({n / connect_s:,.0f}/s)"),
        Figure("backend RSS: baseline / + raw / + project clients",
               f"{rss_base / 2**20:.1f} / {rss_before / 2**20:.1f} / "
               f"{rss_after / 2**20:.1f} MiB"),
        Figure("backend RSS per idle connection (project client, permessage-deflate on)",
               f"{per_connection / 1024:.1f} KiB", "<= 40 KB", per_connection <= RSS_TARGET_BYTES),
        Figure("backend RSS per idle connection without permessage-deflate",
               f"{per_plain / 1024:.1f} KiB", "<= 40 KB", per_plain <= RSS_TARGET_BYTES),
        Figure("heartbeat RTT p50 / p99 (bucket upper bound)",
               f"{_ms(p50)} / {_ms(p99)} over {pongs:,} pongs"),
        Figure("heartbeat timeouts (4408)", f"{timeouts:.0f}"),
    ]  # fmt: skip
    print(json.dumps([f.__dict__ for f in figures], indent=2))
    record(
        "idle",
        "3. Idle connections with heartbeats",
        "make bench (tests/bench/test_idle.py)",
        figures,
        notes=f"One `vigil serve` process (SQLite), VIGIL_HEARTBEAT_INTERVAL_S={HEARTBEAT_S:g}; "
        f"open-file limit raised to {limit} (the hard limit) in the bench and inherited by the "
        f"backend; 100 handshakes in flight at a time; held {HOLD_S:g} s (three heartbeats) "
        "before measuring. The project's client offers permessage-deflate (websockets' default) "
        "and the server accepts it; the raw clients offer no extension, to show what the "
        "deflate state costs. One user per connection (the per-user quota is 20). RTT is the "
        "backend's own histogram, so it includes the time the client process (holding every "
        "connection on the same two cores) takes to answer; the percentile is the upper bound "
        "of its bucket.",
    )
    assert n > 0 and pongs > 0


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:g} ms"
