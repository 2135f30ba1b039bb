"""Acked event throughput on one connection (docs/benchmarks.md, "throughput").

Three servers, each in its own process, push the same frames (one recorded offline-agent
run) to one client connection that acks every event:
- Vigil's full path: chat -> admission -> run -> persist (SQLite) -> event log -> ack window
  -> connection, with the project's client acking each event;
- the ceiling: a bare ``websockets`` server replaying the recorded frames to the same client;
- python-socketio: the same frames with emit-with-ack to the socket.io client.
Each keeps ``IN_FLIGHT`` runs going at once until ``RUNS`` are done; rounds alternate the
three so the machine's load falls on all alike, and the median round counts.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import socketio

from core.client import VigilClient
from tests.bench.common import backend, cpu_seconds, metric_sum, peer, scaled
from tests.bench.report import Figure, record

pytestmark = pytest.mark.bench

RUNS = scaled(300, 20)
IN_FLIGHT = 8
ROUNDS = 3
EVENT_FIELDS = ("type", "epoch", "data")


async def pump(
    send_chat: Callable[[], Awaitable[None]], next_event: Callable[[], Awaitable[dict[str, Any]]]
) -> tuple[int, float]:
    """Keep IN_FLIGHT runs going until RUNS completed; (events received, seconds)."""
    began = time.perf_counter()
    sent = completed = events = 0
    for _ in range(min(IN_FLIGHT, RUNS)):
        await send_chat()
        sent += 1
    while completed < RUNS:
        event = await next_event()
        events += 1
        if event["type"] == "agent_completed":
            completed += 1
            if sent < RUNS:
                await send_chat()
                sent += 1
    return events, time.perf_counter() - began


async def vigil_round(ws_url: str, token: str) -> tuple[int, float]:
    async with VigilClient.connect(ws_url, token) as client:

        async def send_chat() -> None:
            frame = {"type": "chat", "id": uuid.uuid4().hex, "thread_id": None}
            await client.send(frame | {"text": "What is 17 * 23?"})

        return await pump(send_chat, lambda: client.next_event(30))


async def sio_round(url: str) -> tuple[int, float]:
    client = socketio.AsyncClient(reconnection=False)
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    @client.on("event")
    async def on_event(data: dict[str, Any]) -> bool:
        queue.put_nowait(data)
        return True  # the ack

    await client.connect(url, transports=["websocket"])
    try:

        async def send_chat() -> None:
            frame = {"type": "chat", "id": uuid.uuid4().hex, "thread_id": None}
            await client.emit("chat", frame | {"text": "What is 17 * 23?"})

        result = await pump(send_chat, lambda: asyncio.wait_for(queue.get(), 30))
        # Every emit-with-ack was acked: the server counts its ack callbacks.
        acked = await client.call("acked", timeout=30)
        assert acked >= result[0], (acked, result)
        return result
    finally:
        await client.disconnect()


@dataclass
class Cost:
    """CPU spent on one server's rounds, by the server's process and by the client's."""

    events: int = 0
    wall_s: float = 0.0
    server_s: float = 0.0
    client_s: float = 0.0

    def add(self, events: int, wall_s: float, server_s: float, client_s: float) -> None:
        self.events += events
        self.wall_s += wall_s
        self.server_s += server_s
        self.client_s += client_s

    def per_event(self) -> str:
        server, client = (s / self.events * 1e6 for s in (self.server_s, self.client_s))
        return f"{server:,.0f} / {client:,.0f}"

    def server_share(self) -> float:
        return self.server_s / self.wall_s


async def record_template(ws_url: str, token: str, path: Path) -> int:
    async with VigilClient.connect(ws_url, token) as client:
        result = await client.run("What is 17 * 23?")
    template = [{k: event[k] for k in EVENT_FIELDS} for event in result.events]
    path.write_text(json.dumps(template))
    return len(template)


async def test_acked_event_throughput_against_the_ceiling_and_socketio(
    sqlite_url, postgres_session_url, tmp_path
):
    frames = tmp_path / "run.json"
    rates: dict[str, list[float]] = {"vigil": [], "vigil_pg": [], "ceiling": [], "socketio": []}
    # CPU seconds and events over every round, per server: the server's process and the
    # client's (this process), to show which side bounds each rate.
    cpu = {name: Cost() for name in rates}
    with (
        backend(sqlite_url, VIGIL_MAX_RUNS_PER_USER=str(IN_FLIGHT)) as vigil,
        backend(postgres_session_url, VIGIL_MAX_RUNS_PER_USER=str(IN_FLIGHT)) as vigil_pg,
    ):
        token = vigil.token("bench")
        per_run = await record_template(vigil.ws_url, token, frames)
        with (
            peer("tests.bench.peers.ws_ceiling", frames) as (ceiling_port, ceiling),
            peer("tests.bench.peers.sio_peer", frames) as (sio_port, sio),
        ):
            ceiling_url = f"ws://127.0.0.1:{ceiling_port}/ws"
            sio_url = f"http://127.0.0.1:{sio_port}"
            # Warm-up: imports, JIT-less caches, the first SQLite pages.
            await vigil_round(vigil.ws_url, token)
            await vigil_round(vigil_pg.ws_url, token)
            await vigil_round(ceiling_url, token)
            await sio_round(sio_url)
            for _ in range(ROUNDS):
                for name, server_pid, round_ in (
                    ("vigil", vigil.pid, lambda: vigil_round(vigil.ws_url, token)),
                    ("vigil_pg", vigil_pg.pid, lambda: vigil_round(vigil_pg.ws_url, token)),
                    ("ceiling", ceiling.pid, lambda: vigil_round(ceiling_url, token)),
                    ("socketio", sio.pid, lambda: sio_round(sio_url)),
                ):
                    server_before, client_before = cpu_seconds(server_pid), time.process_time()
                    events, seconds = await round_()
                    cpu[name].add(
                        events,
                        seconds,
                        cpu_seconds(server_pid) - server_before,
                        time.process_time() - client_before,
                    )
                    assert events == RUNS * per_run, (name, events)
                    rates[name].append(events / seconds)
        emitted = metric_sum(vigil.base_url, "vigil_events_emitted_total")
        for _ in range(100):
            acked = metric_sum(vigil.base_url, "vigil_events_acked_total")
            if acked >= emitted:
                break
            await asyncio.sleep(0.05)
        undelivered = metric_sum(vigil.base_url, "vigil_events_undelivered_total")
    median = {name: statistics.median(values) for name, values in rates.items()}
    vs_ceiling = median["vigil"] / median["ceiling"]
    vs_socketio = median["vigil"] / median["socketio"]
    figures = [
        Figure("Vigil full path, acked events/s (median of rounds)", f"{median['vigil']:,.0f}"),
        Figure("Vigil on PostgreSQL, acked events/s", f"{median['vigil_pg']:,.0f}"),
        Figure("bare websockets ceiling, events/s", f"{median['ceiling']:,.0f}"),
        Figure("python-socketio emit-with-ack, events/s", f"{median['socketio']:,.0f}"),
        Figure("Vigil / ceiling", f"{vs_ceiling:.2f}x", ">= 0.6x", vs_ceiling >= 0.6),
        Figure("Vigil / python-socketio", f"{vs_socketio:.2f}x", ">= 2x", vs_socketio >= 2.0),
        Figure(
            "Vigil on PostgreSQL / ceiling, / python-socketio",
            f"{median['vigil_pg'] / median['ceiling']:.2f}x, "
            f"{median['vigil_pg'] / median['socketio']:.2f}x",
        ),
        Figure(
            "Vigil events emitted / acked / undelivered",
            f"{emitted:.0f} / {acked:.0f} / {undelivered:.0f}",
        ),
    ]
    sio_vs_ceiling = median["socketio"] / median["ceiling"]
    figures += [
        Figure(
            "python-socketio / ceiling (so 2x python-socketio is this many times the ceiling)",
            f"{sio_vs_ceiling:.2f}x ({2 * sio_vs_ceiling:.2f}x)",
        ),
        Figure(
            "CPU per event, server / client (us): Vigil, Vigil on PostgreSQL, ceiling, "
            "python-socketio",
            ", ".join(cpu[name].per_event() for name in rates),
        ),
        Figure(
            "server's share of one core while pushing: Vigil, Vigil on PostgreSQL, ceiling, "
            "python-socketio",
            ", ".join(f"{cpu[name].server_share():.0%}" for name in rates),
        ),
    ]
    rounds = "; ".join(f"{k}: " + ", ".join(f"{v:,.0f}" for v in vals) for k, vals in rates.items())
    record(
        "throughput",
        "1. Acked event throughput on one connection",
        "make bench (tests/bench/test_throughput.py)",
        figures,
        notes=f"{RUNS} runs of {per_run} events per round, {IN_FLIGHT} runs in flight on one "
        f"connection, {ROUNDS} alternating rounds after a warm-up; each server in its own "
        "process, the client in the test process. Vigil on the embedded default (SQLite, "
        "in-process event log, tracing to the in-memory buffer, metrics on), and the same "
        "on PostgreSQL (the machine's server, a fresh database), each with "
        f"VIGIL_MAX_RUNS_PER_USER={IN_FLIGHT} and the frame rate limit raised so the bench's "
        "own acks are not refused. Events/s per round: " + rounds + ".",
    )
    print(json.dumps({"rates": rates, "median": median}, indent=2))
    assert acked == emitted and undelivered == 0
