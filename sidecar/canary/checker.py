"""The canary's judge: a pure state machine fed the run's events and a clock.

It knows the order PROTOCOL.md promises for a run that calls a tool (agent_started, one or more
agent_thinking, a tool_executing/tool_completed pair with the same call_id, agent_completed
last), times each phase, and on the first thing that goes wrong returns a ``CanaryResult``
naming the outcome and the phase to blame. It never touches a socket.

Phases, each timed from the end of the one before, so they add up to the run:

=================  ==================================================
handshake          connect start to connection_ready
agent_started      chat sent to agent_started
agent_thinking     agent_started to the first agent_thinking
tool_pair          first agent_thinking to the first tool_completed
agent_completed    that tool_completed to agent_completed
=================  ==================================================

Blame (the ``phase`` label of a failure) is ``connect`` or ``auth`` before the socket is open,
otherwise the phase the canary was waiting for when it went wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PHASES = ("handshake", "agent_started", "agent_thinking", "tool_pair", "agent_completed")
RUN = "run"  # the whole run, in vigil_canary_phase_seconds next to the five phases
NO_PHASE = "none"  # the phase label of a success

# Outcomes (the ``outcome`` label).
SUCCESS = "success"
UNREACHABLE = "unreachable"  # connect: no TCP/HTTP answer, or none in time
UNAVAILABLE = "unavailable"  # connect: HTTP 503 not_ready
REFUSED = "refused"  # auth: HTTP 401/403 (or 400 protocol) refusal
PROTOCOL_ERROR = "protocol_error"  # connect: the server did not speak the protocol
CHAT_REFUSED = "chat_refused"  # agent_started: no chat_accepted for the chat
TIMEOUT = "timeout"  # the deadline passed waiting for the phase
MISSING_EVENT = "missing_event"  # a seq gap, or the run ended without the phase's event
OUT_OF_ORDER = "out_of_order"  # an event where the protocol does not allow it
AGENT_ERROR = "agent_error"  # the run reported agent_error or a non-completed status
DISCONNECTED = "disconnected"  # the socket closed mid-run


@dataclass
class CanaryResult:
    outcome: str
    phase: str
    detail: str
    phases: dict[str, float] = field(default_factory=dict)
    started_at: float = 0.0
    run_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == SUCCESS

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "phase": self.phase,
            "detail": self.detail,
            "phases": self.phases,
            "started_at": self.started_at,
            "run_id": self.run_id,
        }


class PhaseChecker:
    def __init__(self, timer: Callable[[], float], deadline_s: float, started_at: float = 0.0):
        self._timer = timer
        self.deadline_s = deadline_s
        self.started_at = started_at
        self._t0 = timer()
        self._mark = self._t0
        self.phases: dict[str, float] = {}
        self.waiting_for = "handshake"
        self.run_id: str | None = None
        self._last_seq: int | None = None
        self._pending_call: str | None = None
        self.result: CanaryResult | None = None

    def remaining(self) -> float:
        return max(0.0, self.deadline_s - (self._timer() - self._t0))

    def connected(self) -> None:
        self._end_phase("handshake", "agent_started")

    def chat_sent(self) -> None:
        self._mark = self._timer()

    def chat_accepted(self, run_id: str) -> None:
        self.run_id = run_id

    def fail(self, outcome: str, phase: str | None, detail: str) -> CanaryResult:
        if self.result is None:
            self.result = self._result(outcome, phase or self.waiting_for, detail)
        return self.result

    def expire(self) -> CanaryResult:
        return self.fail(TIMEOUT, None, f"no {self.waiting_for} within {self.deadline_s:g} s")

    def feed(self, event: dict[str, Any]) -> CanaryResult | None:
        """Judge the next event; a result when the run is over (well or badly), else None."""
        if self.result is not None:
            return self.result
        if self.run_id is not None and event.get("run_id") != self.run_id:
            return None  # another run's event on this connection: not the canary's business
        seq = event.get("seq")
        if isinstance(seq, int):
            if self._last_seq is not None and seq != self._last_seq + 1:
                return self.fail(MISSING_EVENT, None, f"seq {seq} after {self._last_seq}")
            self._last_seq = seq
        kind = event.get("type")
        data = event.get("data") or {}
        if kind == "agent_error":
            return self.fail(AGENT_ERROR, None, f"{data.get('reason')}: {data.get('message')}")
        if kind == "agent_completed":
            return self._completed(data)
        if self.waiting_for == "agent_started":
            if kind != "agent_started":
                return self.fail(OUT_OF_ORDER, None, f"{kind} before agent_started")
            self._end_phase("agent_started", "agent_thinking")
            return None
        if kind == "agent_started":
            return self.fail(OUT_OF_ORDER, None, "a second agent_started")
        if self.waiting_for == "agent_thinking":
            if kind != "agent_thinking":
                return self.fail(OUT_OF_ORDER, None, f"{kind} before agent_thinking")
            self._end_phase("agent_thinking", "tool_pair")
            return None
        return self._in_run(kind, data)

    def _in_run(self, kind: Any, data: dict[str, Any]) -> CanaryResult | None:
        if kind == "agent_thinking":
            if self._pending_call is not None:
                return self.fail(OUT_OF_ORDER, None, "agent_thinking inside a tool pair")
            return None
        if kind == "tool_executing":
            if self._pending_call is not None:
                return self.fail(OUT_OF_ORDER, None, "tool_executing inside a tool pair")
            self._pending_call = str(data.get("call_id"))
            return None
        if kind == "tool_completed":
            call_id = str(data.get("call_id"))
            if call_id != self._pending_call:
                return self.fail(OUT_OF_ORDER, None, f"tool_completed for {call_id} unannounced")
            self._pending_call = None
            if self.waiting_for == "tool_pair":
                self._end_phase("tool_pair", "agent_completed")
            return None
        return self.fail(OUT_OF_ORDER, None, f"unexpected {kind}")

    def _completed(self, data: dict[str, Any]) -> CanaryResult:
        if self.waiting_for != "agent_completed" or self._pending_call is not None:
            return self.fail(MISSING_EVENT, None, f"agent_completed with no {self.waiting_for}")
        status = data.get("status")
        if status != "completed":
            return self.fail(AGENT_ERROR, None, f"agent_completed with status {status}")
        self._end_phase("agent_completed", "done")
        run_s = self._timer() - self._t0
        self.phases[RUN] = run_s
        if run_s > self.deadline_s:
            return self.fail(TIMEOUT, "agent_completed", f"run took {run_s:.2f} s")
        self.result = self._result(SUCCESS, NO_PHASE, "all five events in order")
        return self.result

    def _result(self, outcome: str, phase: str, detail: str) -> CanaryResult:
        return CanaryResult(outcome, phase, detail, dict(self.phases), self.started_at, self.run_id)

    def _end_phase(self, phase: str, next_phase: str) -> None:
        now = self._timer()
        self.phases[phase] = now - self._mark
        self._mark = now
        self.waiting_for = next_phase
