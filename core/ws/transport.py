"""The WebSocket transport under the app: uvicorn's wsproto protocol, closing with the code
RFC 6455 gives a frame it cannot parse.

wsproto turns such a frame (a text frame that is not UTF-8, a protocol violation) into a
``CloseConnection`` event with the right code (1007, 1002) while the connection is still
open, as if the peer had closed; uvicorn then drops the socket without a close frame, so the
client sees 1006 and no reason. Here the server sends that close frame first (RFC 6455,
7.1.7: "Fail the WebSocket Connection"), which is the close code docs/protocol.md documents.
"""

from __future__ import annotations

from uvicorn.protocols.websockets.wsproto_impl import WSProtocol
from wsproto.connection import ConnectionState
from wsproto.events import CloseConnection


class ClosingWSProtocol(WSProtocol):
    def handle_close(self, event: CloseConnection) -> None:
        if not self.close_sent and self.conn.state == ConnectionState.OPEN:
            # Still open: the close is wsproto's verdict on a frame, not the peer's.
            self.transport.write(self.conn.send(CloseConnection(event.code, event.reason)))
        super().handle_close(event)
