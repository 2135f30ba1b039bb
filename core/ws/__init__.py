"""The WebSocket endpoint: handshake, per-connection loop, routing of events to users."""
