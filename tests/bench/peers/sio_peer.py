"""The peer a Python team would pick: python-socketio (ASGI, under uvicorn) pushing the same
recorded frames, each with emit-with-ack (the client's handler return value is the ack).

    python -m tests.bench.peers.sio_peer --port P --frames run.json
"""

from __future__ import annotations

import argparse
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import socketio
import uvicorn


def build(template: list[dict[str, Any]]) -> socketio.ASGIApp:
    sio = socketio.AsyncServer(async_mode="asgi", logger=False, engineio_logger=False)
    acked = {"count": 0}

    def on_ack(*_: Any) -> None:
        acked["count"] += 1

    @sio.on("chat")
    async def chat(sid: str, frame: dict[str, Any]) -> None:
        thread_id = frame.get("thread_id") or uuid.uuid4().hex
        run_id = uuid.uuid4().hex
        accepted = {"type": "chat_accepted", "id": frame["id"], "thread_id": thread_id}
        await sio.emit("chat_accepted", accepted | {"run_id": run_id}, to=sid)
        now = datetime.now(UTC).isoformat()
        for seq, event in enumerate(template, start=1):
            payload = {**event, "thread_id": thread_id, "run_id": run_id, "seq": seq}
            payload |= {"event_id": uuid.uuid4().hex, "ts": now}
            await sio.emit("event", payload, to=sid, callback=on_ack)

    @sio.on("acked")
    async def report(sid: str, *_: Any) -> int:
        return acked["count"]

    return socketio.ASGIApp(sio)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--frames", required=True)
    args = parser.parse_args()
    with open(args.frames) as file:
        app = build(json.load(file))
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", ws="wsproto")
