"""The Redis Streams event log: shared by every replica (``VIGIL_REDIS_URL``).

Keys, per thread (the ``{thread_id}`` hash tag keeps both in one Redis Cluster slot):
- ``<prefix>log:{<thread_id>}``: a stream; entry id ``<seq>-0``, fields ``event`` (the
  envelope as JSON), ``user`` (the owner) and ``ms`` (Redis time at append).
- ``<prefix>meta:{<thread_id>}``: a hash; ``epoch`` and ``last`` (the newest seq logged).

How seq stays atomic. The database assigns the seq (``UPDATE threads SET last_seq =
last_seq + 1 ... RETURNING``, in the transaction that stores the event), and the stream id
is that very seq, so the log and the database can never disagree about which event a seq
names: there is no second counter to drift, and a flushed or failed-over Redis cannot hand
out a seq the database already used. Ordering in Redis is enforced by one Lua script per
append, which Redis runs atomically (no other command interleaves):
1. an epoch unlike the thread's stored epoch starts the stream over (the old entries belong
   to a log life that was lost);
2. a seq at or below ``last`` is not added again (a duplicate, or an event that lost a race
   with a newer one from another replica; XADD would refuse it anyway, ids only grow);
3. otherwise ``XADD <seq>-0``, ``last := seq``. A seq above ``last + 1`` leaves a gap, and
   a read that spans it reports ``complete: false``, so the resume falls back to the
   database instead of replaying a hole;
4. trim by count (``MAXLEN``) and by age (``XTRIM MINID <seq>``, the seq of the oldest
   entry younger than the age bound), and expire both keys after the age bound so idle
   threads cost nothing;
5. ``PUBLISH`` the event on the fan-out channel, also when step 2 skipped the XADD, since a
   late event must still reach the other replicas' connections.

A read is one Lua script too: the thread's ``epoch`` and ``last`` and its entries after the
asked seq, seen at one instant, come back as one reply whose events are their stored JSON
joined by the record separator (0x1E, which no JSON text contains; RFC 7464 uses it so).
One bulk string instead of an array of nested arrays spares the client's reply parser
thousands of items per resume; the events are then validated in one pass (an entry that
is not a valid event makes the read fail, so the resume reads the database instead) and
handed on as the stored text, which is what goes on the wire.

Fan-out: every replica subscribes to ``<prefix>events`` and hands each message from
another replica (``origin`` differs) to its local hub, which sends it to the owner's
connections that follow the thread. The emitting replica sends to its own connections
directly. Acks travel back on ``<prefix>acks``, several to a message: the replica that
emitted an event tracks its ack (and counts it in the delivery SLI) even when its client
acked on another replica.
A replica that loses the subscription resubscribes with backoff; what its connections
missed meanwhile stays in the log and the database for their resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

from core.eventlog.base import MISSING, Deliver, LogRead, OnAck, OnError, contiguous
from core.protocol import AgentEvent, EncodedEvent, parse_events
from core.telemetry.logging import get_logger

log = get_logger(__name__)

REDIS_TIMEOUT_S = 2.0
RESUBSCRIBE_BACKOFF_S = (0.1, 0.5, 1.0, 2.0)
_TRIM_SCAN = 64

# KEYS: stream, meta.  ARGV: epoch, seq, event json, user, maxlen, max_age_ms, channel, message.
APPEND_SCRIPT = """
local stream, meta = KEYS[1], KEYS[2]
local epoch, seq = ARGV[1], tonumber(ARGV[2])
local maxlen, max_age_ms = tonumber(ARGV[5]), tonumber(ARGV[6])
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local added = 0
local last = tonumber(redis.call('HGET', meta, 'last') or '0')
if redis.call('HGET', meta, 'epoch') ~= epoch then
  redis.call('DEL', stream)
  last = 0
end
if seq > last then
  redis.call('XADD', stream, 'MAXLEN', maxlen, seq .. '-0',
             'event', ARGV[3], 'user', ARGV[4], 'ms', now_ms)
  redis.call('HSET', meta, 'epoch', epoch, 'last', seq)
  added = 1
  local cutoff = now_ms - max_age_ms
  local head = redis.call('XRANGE', stream, '-', '+', 'COUNT', %(scan)d)
  local keep = nil
  for _, entry in ipairs(head) do
    local fields = entry[2]
    local ms = nil
    for i = 1, #fields, 2 do
      if fields[i] == 'ms' then ms = tonumber(fields[i + 1]) end
    end
    if ms ~= nil and ms >= cutoff then keep = entry[1] break end
  end
  if keep == nil and #head > 0 then
    keep = (tonumber(string.match(head[#head][1], '^(%%d+)')) + 1) .. '-0'
  end
  if keep ~= nil then redis.call('XTRIM', stream, 'MINID', keep) end
  redis.call('PEXPIRE', stream, max_age_ms)
  redis.call('PEXPIRE', meta, max_age_ms)
end
redis.call('PUBLISH', ARGV[7], ARGV[8])
return added
""" % {"scan": _TRIM_SCAN}  # noqa: UP031 - Lua braces make str.format unreadable

# KEYS: stream, meta.  ARGV: first entry id, count, separator.
# Returns {epoch or nil, last or nil, number of entries, their events joined by separator}.
READ_SCRIPT = """
local meta = redis.call('HMGET', KEYS[2], 'epoch', 'last')
local entries = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', tonumber(ARGV[2]))
local events = {}
for _, entry in ipairs(entries) do
  local fields = entry[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'event' then events[#events + 1] = fields[i + 1] break end
  end
end
return {meta[1], meta[2], #entries, table.concat(events, ARGV[3])}
"""
# Joins the events of a read: a control character, never found in JSON text.
SEPARATOR = "\x1e"


class RedisStreamEventLog:
    backend = "redis"

    def __init__(
        self,
        url: str,
        *,
        prefix: str,
        replica_id: str,
        max_events: int,
        max_age_s: float,
        on_error: OnError,
    ) -> None:
        self._url = url
        self._prefix = prefix
        self._replica_id = replica_id
        # How every message this replica publishes starts (``_message``): its own echoes
        # are dropped before they are decoded.
        self._own_messages = json.dumps({"origin": replica_id})[:-1].encode() + b","
        self._max_events = max_events
        self._max_age_ms = max(1, int(max_age_s * 1000))
        self._on_error = on_error
        self._client = redis.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
        )
        self._append = self._client.register_script(APPEND_SCRIPT)
        self._read = self._client.register_script(READ_SCRIPT)
        self.channel = f"{prefix}events"
        self.ack_channel = f"{prefix}acks"
        self._listener: asyncio.Task[None] | None = None
        # Acks waiting for the next publish: each thread's highest seq (acks are cumulative).
        self._acks: dict[str, int] = {}
        self._ack_publisher: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()

    def stream_key(self, thread_id: str) -> str:
        return f"{self._prefix}log:{{{thread_id}}}"

    def meta_key(self, thread_id: str) -> str:
        return f"{self._prefix}meta:{{{thread_id}}}"

    async def start(self, deliver: Deliver, on_ack: OnAck) -> None:
        self._listener = asyncio.create_task(self._listen(deliver, on_ack), name="eventlog-fanout")
        self._listener.add_done_callback(self._listener_ended)

    def _listener_ended(self, task: asyncio.Task[None]) -> None:
        """The fan-out must only end when ``close`` cancels it: any other ending leaves
        this replica's connections deaf to other replicas' events, so it is counted and
        logged (readiness shows ``fanout: resubscribing`` from then on)."""
        if task.cancelled():
            return
        self.subscribed.clear()
        exc = task.exception()
        self._on_error(self.backend, "fanout_ended")
        log.error(
            "eventlog_fanout_ended",
            backend=self.backend,
            error=type(exc).__name__ if exc else None,
            detail=str(exc)[:200] if exc else None,
        )

    async def acked(self, thread_id: str, seq: int) -> None:
        """Acks go out together: those that arrive while a publish is in flight make the
        next message, with each thread's highest seq. A message per ack, and its echo on
        this replica's own subscription, took about a third of a run's instructions."""
        if seq > self._acks.get(thread_id, 0):
            self._acks[thread_id] = seq
        if self._ack_publisher is None or self._ack_publisher.done():
            self._ack_publisher = asyncio.create_task(self._publish_acks(), name="eventlog-acks")

    async def _publish_acks(self) -> None:
        while self._acks:
            acks, self._acks = self._acks, {}
            message = self._message(acks=list(acks.items()))
            try:
                await self._client.publish(self.ack_channel, message)
            except (RedisError, OSError) as exc:
                self._failed("ack", exc, threads=len(acks))

    async def append(self, user_id: str, event: AgentEvent) -> bool:
        try:
            keys, args = self._append_call(user_id, event)
            await self._append(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            self._failed("append", exc, thread_id=event.thread_id, seq=event.seq)
            return False
        return True

    async def append_all(self, events: Sequence[tuple[str, AgentEvent]]) -> list[bool]:
        """The append script for each event, pipelined: one round trip for a batch (the
        pipeline first makes sure Redis has the script, which costs one more, so a single
        event goes alone). A failure fails only its own event."""
        if len(events) == 1:
            return [await self.append(*events[0])]
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for user_id, event in events:
                    keys, args = self._append_call(user_id, event)
                    await self._append(keys=keys, args=args, client=pipe)
                results = await pipe.execute(raise_on_error=False)
        except (RedisError, OSError) as exc:
            results = [exc] * len(events)
        appended = []
        for (_, event), result in zip(events, results, strict=True):
            if isinstance(result, Exception):
                self._failed("append", result, thread_id=event.thread_id, seq=event.seq)
            appended.append(not isinstance(result, Exception))
        return appended

    def _append_call(self, user_id: str, event: AgentEvent) -> tuple[list[str], list[Any]]:
        """The append script's keys and arguments for one event."""
        payload = event.model_dump_json()
        message = self._message(user_id=user_id, event=payload)
        keys = [self.stream_key(event.thread_id), self.meta_key(event.thread_id)]
        args = [
            event.epoch,
            event.seq,
            payload,
            user_id,
            self._max_events,
            self._max_age_ms,
            self.channel,
            message,
        ]
        return keys, args

    async def read(self, thread_id: str, epoch: str, after_seq: int, limit: int) -> LogRead:
        try:
            stored_epoch, last, count, joined = await self._read(
                keys=[self.stream_key(thread_id), self.meta_key(thread_id)],
                args=[f"{after_seq + 1}-0", limit + 1, SEPARATOR],
            )
        except (RedisError, OSError) as exc:
            self._failed("read", exc, thread_id=thread_id)
            return MISSING
        if stored_epoch is None or stored_epoch.decode() != epoch:
            return MISSING
        try:
            payloads = joined.decode().split(SEPARATOR) if count else []
            parsed = parse_events(payloads)
            if len(payloads) != count or len(parsed) != count:
                # An entry without an event, or one holding more than one.
                raise ValueError(f"{count} entries, {len(parsed)} events")
        except ValueError as exc:
            self._failed("decode", exc, thread_id=thread_id)
            return MISSING
        events = [
            EncodedEvent(event.seq, event.epoch, payload)
            for event, payload in zip(parsed[:limit], payloads[:limit], strict=True)
        ]
        newest = parsed[-1].seq if parsed else after_seq
        complete = (
            len(parsed) <= limit
            and contiguous(parsed, after_seq, epoch)
            and newest == int(last or 0)
        )
        return LogRead(events=events, complete=complete)

    async def check(self) -> dict[str, Any]:
        state: dict[str, Any] = {"backend": self.backend}
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_S):
                await self._client.ping()
        except (RedisError, OSError, TimeoutError) as exc:
            state["state"] = "unreachable"
            state["error"] = type(exc).__name__
        else:
            state["state"] = "connected"
        state["fanout"] = "subscribed" if self.subscribed.is_set() else "resubscribing"
        # Without Redis, events are still stored and sent by the replica that runs them;
        # every replica shares the same Redis, so its loss is no reason to move traffic.
        state["ok"] = True
        state["degraded"] = state["state"] != "connected" or not self.subscribed.is_set()
        return state

    async def close(self) -> None:
        if self._ack_publisher is not None:
            await self._ack_publisher  # the acks already taken reach the other replicas
        if self._listener is not None:
            self._listener.cancel()
            # A listener that ended with an error was already counted (``_listener_ended``).
            await asyncio.gather(self._listener, return_exceptions=True)
        await self._client.aclose()

    async def _listen(self, deliver: Deliver, on_ack: OnAck) -> None:
        """Hand other replicas' events to ``deliver`` and their acks to ``on_ack``;
        resubscribe after any failure."""
        failures = 0
        subscriber = redis.Redis.from_url(
            self._url, socket_connect_timeout=REDIS_TIMEOUT_S, health_check_interval=10
        )
        try:
            while True:
                pubsub = subscriber.pubsub(ignore_subscribe_messages=True)
                try:
                    await pubsub.subscribe(self.channel, self.ack_channel)
                    self.subscribed.set()
                    failures = 0
                    while True:
                        message = await pubsub.get_message(timeout=1.0)
                        if message is None:
                            continue
                        if message["channel"] == self.ack_channel.encode():
                            self._route_ack(message["data"], on_ack)
                        else:
                            self._route(message["data"], deliver)
                # The fan-out's loop boundary: a bug (or a client library error that is
                # no RedisError) must not end the fan-out for good, only this subscription.
                except Exception as exc:  # noqa: BLE001 - counted and resubscribed
                    self.subscribed.clear()
                    expected = isinstance(exc, RedisError | OSError)
                    self._failed("subscribe" if expected else "fanout_crashed", exc)
                    delay = RESUBSCRIBE_BACKOFF_S[min(failures, len(RESUBSCRIBE_BACKOFF_S) - 1)]
                    failures += 1
                    await asyncio.sleep(delay)
                finally:
                    self.subscribed.clear()
                    with contextlib.suppress(RedisError, OSError):
                        await pubsub.aclose()
        finally:
            await subscriber.aclose()

    def _message(self, **fields: Any) -> str:
        """A message to the other replicas: its origin first (``json.dumps`` keeps the
        order of the keys), which is how a replica knows its own echo undecoded."""
        return json.dumps({"origin": self._replica_id, **fields})

    def _route(self, data: bytes, deliver: Deliver) -> None:
        if data.startswith(self._own_messages):
            return  # Sent to this replica's connections when it was emitted.
        try:
            message = json.loads(data)
            event = AgentEvent.model_validate_json(message["event"])
            user_id = str(message["user_id"])
        except (ValueError, KeyError, TypeError) as exc:
            self._failed("decode", exc)
            return
        try:
            deliver(user_id, event)
        except Exception as exc:  # noqa: BLE001 - one bad delivery must not end the fan-out
            self._failed("deliver", exc, thread_id=event.thread_id, seq=event.seq)

    def _route_ack(self, data: bytes, on_ack: OnAck) -> None:
        if data.startswith(self._own_messages):
            return  # Applied here when they were taken.
        try:
            message = json.loads(data)
            acks = [(str(thread_id), int(seq)) for thread_id, seq in message["acks"]]
        except (ValueError, KeyError, TypeError) as exc:
            self._failed("decode", exc)
            return
        for thread_id, seq in acks:
            try:
                on_ack(thread_id, seq)
            except Exception as exc:  # noqa: BLE001 - one bad ack must not end the fan-out
                self._failed("deliver_ack", exc, thread_id=thread_id, seq=seq)

    def _failed(self, operation: str, exc: BaseException, **context: Any) -> None:
        self._on_error(self.backend, operation)
        log.warning(
            "eventlog_failed",
            backend=self.backend,
            operation=operation,
            error=type(exc).__name__,
            detail=str(exc)[:200],
            **context,
        )
