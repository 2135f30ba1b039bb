"""Routes agent events to the connections of the user who owns them, and only those."""

from __future__ import annotations

from collections import defaultdict

from core.protocol import AgentEvent
from core.ws.connection import Connection


class Hub:
    def __init__(self) -> None:
        self._by_user: dict[str, set[Connection]] = defaultdict(set)

    def add(self, connection: Connection) -> None:
        self._by_user[connection.user_id].add(connection)

    def remove(self, connection: Connection) -> None:
        connections = self._by_user.get(connection.user_id)
        if connections is not None:
            connections.discard(connection)
            if not connections:
                del self._by_user[connection.user_id]

    def count(self, user_id: str) -> int:
        return len(self._by_user.get(user_id, ()))

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
