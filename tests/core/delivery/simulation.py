"""A whole delivery path in memory, built only from the pure classes: a server (log, ack
window, redelivery, resume merge), connections that lose or repeat frames, and a client
(``Inbound``). Tests drive it step by step; nothing sleeps, the clock is a number."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from core.delivery.redelivery import GiveUp, Redeliver, Redelivery, RetrySchedule
from core.delivery.resume import Inbound, ReplayMerge
from core.delivery.window import AckWindow

Frame = dict[str, Any]
EPOCH = "e1"


@dataclass
class Resume:
    thread_id: str
    merge: ReplayMerge[Frame]
    replay: list[tuple[int, Frame]] | None = None  # read from the log, not yet merged
    outgoing: list[Frame] | None = None  # merged, being sent one by one (as the client reads)
    last_sent: int = 0
    recovered: bool = False


@dataclass
class SimConnection:
    inbox: deque[Frame] = field(default_factory=deque)
    following: set[str] = field(default_factory=set)
    resumes: dict[str, Resume] = field(default_factory=dict)
    alive: bool = True

    def send_event(self, event: Frame) -> None:
        resume = self.resumes.get(event["thread_id"])
        if resume is not None:
            resume.merge.hold(event["seq"], event)
        else:
            self.inbox.append(event)


class SimServer:
    def __init__(self, schedule: RetrySchedule) -> None:
        self.log: dict[str, list[Frame]] = {}
        self.redelivery = Redelivery(AckWindow(), schedule)
        self.connections: list[SimConnection] = []
        self.now = 0.0
        self.given_up: list[tuple[str, int]] = []
        self.recovered: list[bool] = []

    def publish(self, event: Frame) -> bool:
        reached = False
        for connection in self.connections:
            if connection.alive and event["thread_id"] in connection.following:
                connection.send_event(event)
                reached = True
        return reached

    def emit(self, thread_id: str) -> None:
        events = self.log.setdefault(thread_id, [])
        event = {"type": "agent_thinking", "thread_id": thread_id, "epoch": EPOCH}
        event["seq"] = len(events) + 1
        events.append(event)
        self.redelivery.sent(
            thread_id=thread_id,
            seq=event["seq"],
            event_type=event["type"],
            run_id="r",
            user_id="u",
            now=self.now,
            reached=self.publish(event),
            payload=event,
        )

    def ack(self, thread_id: str, seq: int) -> None:
        assert 0 <= seq <= len(self.log.get(thread_id, [])), "an ack for a seq never sent"
        self.redelivery.acked(thread_id, seq, self.now)

    def tick(self, seconds: float) -> None:
        self.now += seconds
        for decision in self.redelivery.tick(self.now):
            if isinstance(decision, Redeliver):
                payload = decision.entry.payload
                assert isinstance(payload, dict)
                self.redelivery.redelivered(decision.entry, self.publish(payload))
            elif isinstance(decision, GiveUp):
                self.given_up.append((decision.retired.thread_id, decision.retired.seq))

    def begin_resume(self, connection: SimConnection, thread_id: str, epoch: str, after: int):
        merge = ReplayMerge[Frame](after, epoch_matches=epoch == EPOCH)
        connection.resumes[thread_id] = Resume(thread_id, merge)
        connection.following.add(thread_id)

    def read_replay(self, connection: SimConnection, thread_id: str) -> None:
        resume = connection.resumes[thread_id]
        after = resume.merge.after_seq
        resume.replay = [(e["seq"], e) for e in self.log.get(thread_id, [])[after:]]

    def send_resume(self, connection: SimConnection, thread_id: str) -> None:
        """One step of the handler: merge, then send one event; live events stay held until
        the merged events and everything held meanwhile are out, then ``resumed``."""
        resume = connection.resumes[thread_id]
        if resume.outgoing is None:
            merged = resume.merge.finish(resume.replay or [], complete=True)
            resume.outgoing, resume.recovered = merged.items, merged.recovered
            resume.last_sent = resume.merge.after_seq
        if not resume.outgoing:
            resume.outgoing = resume.merge.take_held(resume.last_sent)
        if resume.outgoing:
            event = resume.outgoing.pop(0)
            connection.inbox.append(event)
            resume.last_sent = event["seq"]
            return
        del connection.resumes[thread_id]
        connection.inbox.append(
            {"type": "resumed", "thread_id": thread_id, "recovered": resume.recovered}
        )
        self.recovered.append(resume.recovered)


class SimClient:
    """The application's view: ``seen`` is what it was handed, per thread, in order."""

    def __init__(self, server: SimServer, threads: list[str]) -> None:
        self.server = server
        self.inbound = Inbound()
        self.seen: dict[str, list[int]] = {thread: [] for thread in threads}
        self.connection: SimConnection | None = None
        self.connect()
        for thread in threads:  # chat_accepted: the thread is followed from its start
            self.inbound.follow(thread, EPOCH)
            self.connection_or_fail().following.add(thread)
        self.inbound.resume_points()  # a new thread counts from seq 1

    def connection_or_fail(self) -> SimConnection:
        assert self.connection is not None
        return self.connection

    def connect(self) -> None:
        self.connection = SimConnection()
        self.server.connections.append(self.connection)

    def drop(self) -> None:
        """The socket dies: whatever was in flight is lost."""
        if self.connection is not None:
            self.connection.alive = False
            self.connection.inbox.clear()
            self.server.connections.remove(self.connection)
            self.connection = None

    def reconnect(self) -> None:
        if self.connection is not None:
            return
        self.connect()
        for thread_id, epoch, last_seq in self.inbound.resume_points():
            self.server.begin_resume(self.connection_or_fail(), thread_id, epoch, last_seq)

    def progress_resume(self) -> None:
        """The server gets on with the oldest resume in flight: read, then send a step."""
        if self.connection is None or not self.connection.resumes:
            return
        resume = next(iter(self.connection.resumes.values()))
        if resume.replay is None:
            self.server.read_replay(self.connection, resume.thread_id)
        else:
            self.server.send_resume(self.connection, resume.thread_id)

    def receive(self, *, duplicate: bool = False) -> None:
        if self.connection is None or not self.connection.inbox:
            return
        frame = self.connection.inbox[0] if duplicate else self.connection.inbox.popleft()
        if frame["type"] == "resumed":
            assert frame["recovered"]
            return
        for event in self.inbound.offer(frame):
            self.seen[event["thread_id"]].append(event["seq"])
        self.server.ack(frame["thread_id"], self.inbound.ack_seq(frame["thread_id"]))

    def settle(self) -> None:
        """Come back if away, let every resume finish and read everything in flight."""
        self.reconnect()
        while self.connection is not None and (self.connection.resumes or self.connection.inbox):
            self.progress_resume()
            while self.connection.inbox:
                self.receive()
