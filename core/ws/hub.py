"""Routes agent events to the connections of the user who owns them, and only those; and
holds each user's connection slots, reserved at the handshake before it is accepted."""

from __future__ import annotations

from collections import defaultdict

from core.protocol import AgentEvent
from core.ws.connection import Connection


class Hub:
    def __init__(self) -> None:
        self._by_user: dict[str, set[Connection]] = defaultdict(set)
        self._reserved: dict[str, int] = defaultdict(int)

    def reserve(self, user_id: str, limit: int) -> bool:
        """Take one of the user's ``limit`` connection slots for a handshake in progress;
        False when they are all taken (by connections or by other handshakes). Checking and
        taking happen in one step, with no await between, so concurrent handshakes cannot
        all pass the check. The slot is ``release``d if the handshake fails, or passed to
        the connection by ``add(..., reserved=True)``."""
        if self.count(user_id) >= limit:
            return False
        self._reserved[user_id] += 1
        return True

    def release(self, user_id: str) -> None:
        """Give back a slot a handshake reserved and will not use."""
        if self._reserved.get(user_id, 0) > 1:
            self._reserved[user_id] -= 1
        else:
            self._reserved.pop(user_id, None)

    def add(self, connection: Connection, *, reserved: bool = False) -> None:
        """Route the user's events to ``connection`` too; ``reserved``: it takes over the
        slot its handshake reserved."""
        self._by_user[connection.user_id].add(connection)
        if reserved:
            self.release(connection.user_id)

    def remove(self, connection: Connection) -> None:
        connections = self._by_user.get(connection.user_id)
        if connections is not None:
            connections.discard(connection)
            if not connections:
                del self._by_user[connection.user_id]

    def count(self, user_id: str) -> int:
        """The user's connections, and the handshakes holding a slot."""
        return len(self._by_user.get(user_id, ())) + self._reserved.get(user_id, 0)

    def total(self) -> int:
        return sum(len(connections) for connections in self._by_user.values())

    def followed(self, owner_user_id: str, thread_id: str) -> bool:
        """Whether any connection of the owner here follows the thread."""
        return any(c.follows(thread_id) for c in self._by_user.get(owner_user_id, ()))

    def all(self) -> list[Connection]:
        return [c for connections in self._by_user.values() for c in connections]

    def publish(self, owner_user_id: str, event: AgentEvent) -> int:
        """Send to every connection of the owner that follows the thread; return how many."""
        sent = 0
        for connection in list(self._by_user.get(owner_user_id, ())):
            if connection.follows(event.thread_id) and connection.send_event(event, owner_user_id):
                sent += 1
        return sent
