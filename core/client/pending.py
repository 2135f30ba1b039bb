"""The client's bookkeeping of what waits for an answer, apart from the socket:

- ``PendingChats``: chats waiting for their ``chat_accepted`` (or ``error``), matched by id.
  They are sent again after a reconnect; the server starts one run per id, so a chat lost
  with its connection is neither lost nor doubled, and a second answer is dropped.
- ``ResumeQueue``: after a reconnect, the followed threads are resumed one at a time, each
  answered before the next, so a client following many threads stays inside the server's
  frame budget. A refusal worth retrying puts the thread back at the front. A resume's
  answer, ``resumed`` or ``error``, names its thread.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from typing import Any

Frame = dict[str, Any]
# Refusals of a resume that pass with time (the frame budget refills, the database returns).
RETRY_RESUME_CODES = frozenset({"rate_limited", "unavailable"})
ANSWERED_MEMORY = 1000


class PendingChats:
    def __init__(self, memory: int = ANSWERED_MEMORY) -> None:
        self._waiting: dict[str, tuple[Frame, asyncio.Future[Frame]]] = {}
        self._answered: deque[str] = deque(maxlen=memory)

    def open(self, msg_id: str, frame: Frame) -> asyncio.Future[Frame]:
        answer: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._waiting[msg_id] = (frame, answer)
        return answer

    def close(self, msg_id: str) -> None:
        self._waiting.pop(msg_id, None)

    def answer(self, frame: Frame) -> bool:
        """True when ``frame`` answers a chat (now or before): it is not the application's."""
        kind = frame.get("type")
        msg_id = frame.get("id") if kind == "chat_accepted" else frame.get("ref")
        if kind not in ("chat_accepted", "error") or not isinstance(msg_id, str):
            return False
        waiting = self._waiting.get(msg_id)
        if waiting is None:
            return msg_id in self._answered
        if not waiting[1].done():
            waiting[1].set_result(frame)
        self._answered.append(msg_id)
        return True

    def unanswered(self) -> list[Frame]:
        return [frame for frame, answer in self._waiting.values() if not answer.done()]


class ResumeQueue:
    def __init__(self) -> None:
        self._queue: deque[str] = deque()
        self.current: str | None = None
        self.errors: list[Frame] = []
        self.retries = 0

    def restart(self, thread_ids: Iterable[str]) -> None:
        self._queue = deque(thread_ids)
        self.current = None

    def add(self, thread_id: str) -> bool:
        """Queue one more thread unless it is queued or in flight; True when nothing is in
        flight, so the caller sends it now."""
        if thread_id != self.current and thread_id not in self._queue:
            self._queue.append(thread_id)
        return self.current is None

    def next(self) -> str | None:
        """The thread to resume now (None: all done)."""
        self.current = self._queue.popleft() if self._queue else None
        return self.current

    def answers(self, frame: Frame) -> bool:
        """Whether ``frame`` is the answer to the resume in flight."""
        if self.current is None:
            return False
        # Matched on the thread: the errors of acks and pongs carry no ref either.
        return frame.get("type") in ("resumed", "error") and frame.get("thread_id") == self.current

    def refused(self, error: Frame) -> bool:
        """The resume in flight was refused: True if it is to be tried again later (the
        thread goes back to the front), False if it is given up (recorded in ``errors``)."""
        assert self.current is not None
        thread_id, self.current = self.current, None
        if error.get("code") in RETRY_RESUME_CODES:
            self._queue.appendleft(thread_id)
            self.retries += 1
            return True
        self.errors.append({**error, "thread_id": thread_id})
        return False
