"""Delivery guarantees as pure decision logic (no sockets, no sleeps, ``now`` passed in).

- ``window``: the ack window, the one tracker of emitted events awaiting a client ack.
- ``redelivery``: when an unacked event is sent again, and when it is given up.
- ``resume``: merging replayed and live events without gap or duplicate (server side),
  and handing a thread's events to the application exactly once, in order (client side).
- ``reconnect``: the client's close-code table and its backoff with full jitter.

The asyncio layers that wire these to the hub and the sockets live in ``core.ws.delivery``
(acks and redelivery), ``core.ws.resume`` (resumes) and ``core.client`` (the client).
"""
