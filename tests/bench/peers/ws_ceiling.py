"""The ceiling of the Python stack: a bare ``websockets`` server that speaks just enough of
vigil.v1 for the project's client (``connection_ready``, ``chat`` -> ``chat_accepted`` and a
run's recorded frames, acks read per event) and nothing else: no auth, no database, no log,
no ack window, no telemetry.

    python -m tests.bench.peers.ws_ceiling --port P --frames run.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from websockets.asyncio.server import ServerConnection, serve


def _frames(template: list[dict[str, Any]], thread_id: str, run_id: str, seq0: int) -> list[str]:
    now = datetime.now(UTC).isoformat()
    out = []
    for offset, frame in enumerate(template, start=1):
        event = {**frame, "thread_id": thread_id, "run_id": run_id, "seq": seq0 + offset}
        event["event_id"] = uuid.uuid4().hex
        event["ts"] = now
        out.append(json.dumps(event))
    return out


async def handler(websocket: ServerConnection, template: list[dict[str, Any]]) -> None:
    ready = {
        "type": "connection_ready",
        "connection_id": uuid.uuid4().hex,
        "user_id": "bench",
        "protocol": "vigil.v1",
        "heartbeat_interval_s": 15,
        "server_time": datetime.now(UTC).isoformat(),
    }
    await websocket.send(json.dumps(ready))
    acked: dict[str, int] = {}
    seqs: dict[str, int] = {}
    async for raw in websocket:
        frame = json.loads(raw)
        if frame.get("type") == "ack":
            acked[frame["thread_id"]] = frame["seq"]
        elif frame.get("type") == "chat":
            thread_id = frame.get("thread_id") or uuid.uuid4().hex
            run_id = uuid.uuid4().hex
            accepted = {"type": "chat_accepted", "id": frame["id"], "thread_id": thread_id}
            accepted |= {"run_id": run_id, "epoch": "bench"}
            await websocket.send(json.dumps(accepted))
            seq0 = seqs.get(thread_id, 0)
            frames = _frames(template, thread_id, run_id, seq0)
            seqs[thread_id] = seq0 + len(frames)
            for payload in frames:
                await websocket.send(payload)


async def main(port: int, template: list[dict[str, Any]]) -> None:
    async with serve(
        lambda ws: handler(ws, template),
        "127.0.0.1",
        port,
        subprotocols=["vigil.v1"],  # type: ignore[list-item]
        ping_interval=None,
        max_size=2**22,
    ) as server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--frames", required=True)
    args = parser.parse_args()
    with open(args.frames) as file:
        asyncio.run(main(args.port, json.load(file)))
