"""The project's Python client for the v1 protocol (used by the canary, the load generator
and the tests).

- ``session``: ``VigilClient``, one logical session: events handed to the application
  exactly once and in seq order, acked, pings answered, chats matched to their answers.
- ``recovery``: with ``Reconnect``, the session survives lost connections (backoff with
  full jitter, resume, REST backfill).
- ``handshake``: opening one authenticated socket, and ``HandshakeRefused``.
- ``backfill``: reading a thread's stored events over REST.
- ``pending``: chats waiting for their answer, and the queue of threads to resume.
"""

from websockets.exceptions import ConnectionClosed

from core.client.handshake import HandshakeRefused
from core.client.recovery import Reconnect
from core.client.session import EVENT_TYPES, ChatRefused, RunResult, VigilClient
from core.protocol import SUBPROTOCOL

__all__ = [
    "EVENT_TYPES",
    "SUBPROTOCOL",
    "ChatRefused",
    "ConnectionClosed",
    "HandshakeRefused",
    "Reconnect",
    "RunResult",
    "VigilClient",
]
