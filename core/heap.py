"""Keeping the cyclic garbage collector's full collections short and rare in long-running
processes."""

from __future__ import annotations

import gc

# Net new objects that start a collection of the youngest generation (CPython's default is
# 700). Every idle connection keeps a few objects waiting for its next message (the read
# loop's awaiting chain, its next heartbeat): they live one heartbeat interval, and each is
# replaced when it ends. At 700, the churn of those live objects alone started young
# collections, each of which moved the waiting ones to the oldest generation, where they
# died: with 10,000 idle connections (about 1.5 million objects) that came to a full
# collection of about 1.1 s every 12 to 15 s, every connection stalled meanwhile (heartbeat
# RTT p99 2.5 s). At 10,000 or at 50,000, no collection of any generation ran in a 120 s
# hold of those 10,000 connections; 50,000 leaves room for more of them, and a young
# collection paused at most 13 ms under the sessions bench's pausing load (100 users).
YOUNG_GENERATION_THRESHOLD = 50_000


def settle_heap() -> None:
    """Once a process has started: move what is alive (mostly its imports: some 190,000
    objects in the backend) out of the cyclic collector's reach for good, as ``gc.freeze``
    is meant for, and collect the youngest generation less often
    (``YOUNG_GENERATION_THRESHOLD``). A full collection then scans only what came after:
    with the imports it took about 120 ms on the bench machine, a stall every run in flight
    waited out. Garbage is collected first, so none of it is kept."""
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, oldest)
