"""Idle connections with heartbeats on one backend process (docs/benchmarks.md, "idle"):
as many as the machine allows, up to 10,000, on the default settings; the backend's RSS per
connection and the heartbeat RTT p99 the backend itself measured (vigil_heartbeat_rtt_seconds).
Then, on a second backend with VIGIL_WS_PER_MESSAGE_DEFLATE=true, what the deflate state adds.

The file-descriptor limit is raised to the hard limit here (the backends inherit it). The
clients are the project's client in the test process, which answers every ping and offers
permessage-deflate (websockets' default): the default backend declines it."""

from __future__ import annotations

import asyncio
import json
import resource
import time
from collections import Counter
from dataclasses import dataclass

import pytest

from core.client import HandshakeRefused, VigilClient
from tests.bench.common import (
    backend,
    bucket_delta,
    bucket_quantile,
    histogram_buckets,
    metric_samples,
    metric_sum,
    rss_bytes,
    scaled,
)
from tests.bench.report import Figure, record
from tests.fixtures.servers import BackendProcess

pytestmark = pytest.mark.bench

TARGET = scaled(10_000, 100)
# On the backend that accepts permessage-deflate: enough to show its cost per connection.
DEFLATE = scaled(2_000, 20)
# Handshakes opened and closed before the baseline. Each leaves about four finished spans
# (the handshake and its user's statements) in the trace buffer, which keeps the last
# VIGIL_TRACE_BUFFER_SPANS (2,000): full before the baseline, it is not counted per connection.
WARM = scaled(600, 20)
HEARTBEAT_S = 5.0
HOLD_S = 3 * HEARTBEAT_S
RTT = "vigil_heartbeat_rtt_seconds"
RSS_TARGET_BYTES = 40_000


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


@dataclass
class Held:
    """What one backend held: its clients, its RSS before and with them, its heartbeats."""

    asked: int
    clients: list[VigilClient]
    errors: Counter[str]
    connect_s: float
    rss_base: int
    rss_after: int
    deflated: int
    still_open: int
    active: float
    # Heartbeat RTT (p50, p99, pongs) while the connections were being opened, and over the
    # hold that follows, when they are all open and idle.
    opening_rtt: tuple[float | None, float | None, int]
    held_rtt: tuple[float | None, float | None, int]
    # The backend's full collections (python_gc_collections_total, generation 2) meanwhile.
    opening_full_gcs: float
    held_full_gcs: float
    timeouts: float

    @property
    def per_connection(self) -> float:
        return (self.rss_after - self.rss_base) / max(len(self.clients), 1)


async def hold(vigil: BackendProcess, count: int, user_prefix: str) -> Held:
    """Warm up, measure the baseline, open ``count`` clients, hold them through three
    heartbeats, measure again, close them."""
    tokens = [vigil.token(f"{user_prefix}-{i}") for i in range(WARM + count)]
    warm = await open_many(vigil.ws_url, tokens[:WARM], Counter())
    await asyncio.gather(*(client.close() for client in warm))
    await asyncio.sleep(2)
    rss_base = rss_bytes(vigil.pid)
    errors: Counter[str] = Counter()
    began = time.monotonic()
    rtt_base = histogram_buckets(vigil.base_url, RTT)
    gcs_base = _full_gcs(vigil)
    clients = await open_many(vigil.ws_url, tokens[WARM:], errors)
    connect_s = time.monotonic() - began
    rtt_opened = histogram_buckets(vigil.base_url, RTT)
    gcs_opened = _full_gcs(vigil)
    await asyncio.sleep(HOLD_S)
    rss_after = rss_bytes(vigil.pid)
    rtt_held = histogram_buckets(vigil.base_url, RTT)
    gcs_held = _full_gcs(vigil)
    held = Held(
        asked=count,
        clients=clients,
        errors=errors,
        connect_s=connect_s,
        rss_base=rss_base,
        rss_after=rss_after,
        deflated=sum(1 for c in clients if c.websocket.protocol.extensions),
        still_open=sum(1 for c in clients if c.websocket.close_code is None),
        active=metric_sum(vigil.base_url, "vigil_ws_active_connections"),
        opening_rtt=_rtt(bucket_delta(rtt_opened, rtt_base)),
        held_rtt=_rtt(bucket_delta(rtt_held, rtt_opened)),
        opening_full_gcs=gcs_opened - gcs_base,
        held_full_gcs=gcs_held - gcs_opened,
        timeouts=sum(
            v
            for (name, labels), v in metric_samples(vigil.base_url).items()
            if name == "vigil_ws_disconnects_total" and dict(labels).get("code") == "4408"
        ),
    )
    await asyncio.gather(*(client.close() for client in clients))
    return held


async def test_idle_connections_with_heartbeats(sqlite_url):
    limit = raise_fd_limit(2 * TARGET + 1000)
    env = {"VIGIL_HEARTBEAT_INTERVAL_S": str(HEARTBEAT_S)}
    with backend(sqlite_url, **env) as vigil:
        idle = await hold(vigil, TARGET, "idle")
    with backend(sqlite_url, VIGIL_WS_PER_MESSAGE_DEFLATE="true", **env) as vigil:
        deflate = await hold(vigil, DEFLATE, "deflate")
    n = len(idle.clients)
    figures = [
        Figure("connections held on one process (asked for)", f"{n:,} ({TARGET:,})",
               "up to 10,000", n >= TARGET),
        Figure("connect errors", str(dict(idle.errors) or 0)),
        Figure("clients open after the hold / backend gauge",
               f"{idle.still_open:,} / {idle.active:,.0f}"),
        Figure("time to open them all", f"{idle.connect_s:.1f} s ({n / idle.connect_s:,.0f}/s)"),
        Figure("clients that negotiated permessage-deflate", f"{idle.deflated:,}"),
        Figure("backend RSS: after the warm-up / with the connections",
               f"{idle.rss_base / 2**20:.1f} / {idle.rss_after / 2**20:.1f} MiB"),
        Figure("backend RSS per idle connection (default settings)",
               f"{idle.per_connection / 1024:.1f} KiB", "<= 40 KB (39.1 KiB)",
               idle.per_connection <= RSS_TARGET_BYTES),
        Figure("heartbeat RTT p50 / p99 over the hold, all connections open and idle",
               _rtt_text(idle.held_rtt)),
        Figure("heartbeat RTT p50 / p99 while they were being opened", _rtt_text(idle.opening_rtt)),
        Figure("the backend's full garbage collections while opening / over the hold",
               f"{idle.opening_full_gcs:.0f} / {idle.held_full_gcs:.0f}"),
        Figure("heartbeat timeouts (4408)", f"{idle.timeouts:.0f}"),
        Figure("VIGIL_WS_PER_MESSAGE_DEFLATE=true: connections held / negotiated deflate",
               f"{len(deflate.clients):,} / {deflate.deflated:,} ({DEFLATE:,} asked, "
               f"errors: {dict(deflate.errors) or 0})"),
        Figure("VIGIL_WS_PER_MESSAGE_DEFLATE=true: backend RSS per idle connection",
               f"{deflate.per_connection / 1024:.1f} KiB"),
    ]  # fmt: skip
    print(json.dumps([f.__dict__ for f in figures], indent=2))
    record(
        "idle",
        "3. Idle connections with heartbeats",
        "make bench (tests/bench/test_idle.py)",
        figures,
        notes=f"One `vigil serve` process (SQLite) on the default settings, "
        f"VIGIL_HEARTBEAT_INTERVAL_S={HEARTBEAT_S:g}; open-file limit raised to {limit} (the "
        "hard limit) in the bench and inherited by the backend; 100 handshakes in flight at a "
        f"time; held {HOLD_S:g} s (three heartbeats) before measuring. Before the baseline, "
        f"{WARM:,} handshakes are opened and closed, which fills the bounded trace buffer "
        "(VIGIL_TRACE_BUFFER_SPANS): the figure is what each further connection holds. The "
        "project's client offers permessage-deflate (websockets' default); the backend "
        "declines it unless VIGIL_WS_PER_MESSAGE_DEFLATE=true, measured the same way on a "
        f"second backend with {DEFLATE:,} connections. One user per connection (the per-user "
        "quota is 20). RTT is the backend's own histogram, so it includes the time the client "
        "process (holding every connection on the same two cores) takes to answer; the "
        "percentile is the upper bound of its bucket. It is read before the connections are "
        "opened, once they all are, and after the hold: the pongs of each stretch apart. A "
        "full garbage collection stalls every connection for as long as it scans the heap "
        "(about 1 s at 10,000 connections); core/heap.py keeps them rare.",
    )
    assert n > 0 and idle.held_rtt[2] > 0
    assert deflate.deflated == len(deflate.clients) > 0


def _full_gcs(vigil: BackendProcess) -> float:
    samples = metric_samples(vigil.base_url)
    return samples[("python_gc_collections_total", (("generation", "2"),))]


def _rtt(buckets: dict[float, float]) -> tuple[float | None, float | None, int]:
    p50, pongs = bucket_quantile(buckets, 0.50)
    p99, _ = bucket_quantile(buckets, 0.99)
    return p50, p99, pongs


def _rtt_text(rtt: tuple[float | None, float | None, int]) -> str:
    p50, p99, pongs = rtt
    return f"{_ms(p50)} / {_ms(p99)} over {pongs:,} pongs"


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:g} ms"
