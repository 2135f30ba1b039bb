"""The wire contract (docs/protocol.md) as pydantic models: one schema, used everywhere.

Client frames are parsed by ``parse_client_frame``, which never raises anything but
``FrameError`` (carrying the documented error code). Server frames are built from the
models below and serialised with ``dump``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import IntEnum
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

# The WebSocket subprotocol a client offers and the server selects; also the protocol
# version named in connection_ready.
SUBPROTOCOL = "vigil.v1"


class CloseCode(IntEnum):
    """The close codes of PROTOCOL.md, the one table server and client both use."""

    NORMAL = 1000  # stop
    GOING_AWAY = 1001  # reconnect with backoff, then resume
    PROTOCOL_ERROR = 1002  # a frame that breaks RFC 6455: fix the client
    NO_CLOSE_FRAME = 1006  # (never sent) the connection ended without a close frame
    INVALID_DATA = 1007  # (extension) a frame that is not UTF-8: fix the client
    MESSAGE_TOO_BIG = 1009  # fix the client
    INTERNAL_ERROR = 1011  # reconnect with backoff, then resume
    SERVICE_RESTART = 1012  # drain: reconnect at once elsewhere, then resume
    TOKEN_EXPIRED = 4401  # refresh the token, reconnect, resume
    FORBIDDEN = 4403  # stop
    HEARTBEAT_TIMEOUT = 4408  # reconnect, resume
    SLOW_CONSUMER = 4409  # reconnect, resume
    RATE_LIMITED = 4429  # back off, reconnect, resume


EventType = Literal[
    "agent_started",
    "agent_thinking",
    "tool_executing",
    "tool_completed",
    "agent_completed",
    "agent_error",
]
RunStatus = Literal["completed", "failed", "timeout", "cancelled"]
ErrorCode = Literal[
    "invalid_json",
    "unknown_type",
    "invalid_field",
    "too_large",
    "rate_limited",
    "not_found",
    "conflict",
    "unavailable",  # an extension of v1: the server could not serve the frame right now
]


def utc_now() -> datetime:
    return datetime.now(UTC)


# --- client to server -------------------------------------------------------------------

_Id = Annotated[str, Field(min_length=1, max_length=128)]


class _ClientFrame(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class ChatFrame(_ClientFrame):
    type: Literal["chat"]
    id: _Id
    thread_id: _Id | None
    text: str


class AckFrame(_ClientFrame):
    type: Literal["ack"]
    thread_id: _Id
    seq: int = Field(ge=0)


class ResumeFrame(_ClientFrame):
    type: Literal["resume"]
    thread_id: _Id
    epoch: str = Field(max_length=128)
    last_seq: int = Field(ge=0)


class PongFrame(_ClientFrame):
    type: Literal["pong"]
    ts: Any = None


class CancelFrame(_ClientFrame):
    type: Literal["cancel"]
    run_id: _Id


ClientFrame = ChatFrame | AckFrame | ResumeFrame | PongFrame | CancelFrame
_CLIENT_FRAME = TypeAdapter[ClientFrame](Annotated[ClientFrame, Field(discriminator="type")])
CLIENT_FRAME_TYPES = frozenset({"chat", "ack", "resume", "pong", "cancel"})


class FrameError(Exception):
    """A client frame the server refuses; answered with an ``error`` frame."""

    def __init__(self, code: ErrorCode, message: str, ref: str | None = None) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message
        self.ref = ref


def parse_client_frame(raw: str, *, max_text_chars: int) -> ClientFrame:
    try:
        document = json.loads(raw)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise FrameError("invalid_json", "the frame is not valid JSON") from exc
    if not isinstance(document, dict):
        raise FrameError("invalid_json", "a frame must be a JSON object")
    ref = document.get("id") if isinstance(document.get("id"), str) else None
    frame_type = document.get("type")
    if not isinstance(frame_type, str):
        raise FrameError("invalid_field", "missing or non-string field 'type'", ref)
    if frame_type not in CLIENT_FRAME_TYPES:
        raise FrameError("unknown_type", f"unknown frame type {frame_type[:40]!r}", ref)
    text = document.get("text")
    if frame_type == "chat" and isinstance(text, str):
        if len(text) > max_text_chars:
            raise FrameError("too_large", f"text is longer than {max_text_chars} characters", ref)
        if "\x00" in text:
            # PostgreSQL cannot store NUL in text; refuse it the same way on every database.
            raise FrameError("invalid_field", "field 'text': must not contain NUL characters", ref)
    try:
        return _CLIENT_FRAME.validate_python(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"][1:]) or frame_type
        raise FrameError("invalid_field", f"field '{where}': {first['msg']}", ref) from exc


# --- server to client -------------------------------------------------------------------


class _ServerFrame(BaseModel):
    model_config = ConfigDict(frozen=True)


class AgentEvent(_ServerFrame):
    """The envelope every agent event carries (PROTOCOL.md, "Agent events")."""

    type: EventType
    thread_id: str
    run_id: str
    epoch: str
    seq: int
    event_id: str
    ts: datetime
    data: dict[str, Any]


class EncodedEvent(NamedTuple):
    """An agent event already serialised: its envelope as JSON text, sent as it is, with the
    seq and epoch a resume orders and checks it by. The event logs hold events serialised;
    a replay hands on that text instead of parsing it into an ``AgentEvent`` only to
    serialise it again."""

    seq: int
    epoch: str
    json: str

    @classmethod
    def of(cls, event: AgentEvent) -> EncodedEvent:
        return cls(event.seq, event.epoch, event.model_dump_json())


_AGENT_EVENTS: TypeAdapter[list[AgentEvent]] = TypeAdapter(list[AgentEvent])


def parse_events(texts: Sequence[str]) -> list[AgentEvent]:
    """Events from their JSON texts, checked in one pass (one JSON array, not one parse per
    event); ``ValidationError`` (a ``ValueError``) if any text is not an agent event."""
    return _AGENT_EVENTS.validate_json("[" + ",".join(texts) + "]")


class ConnectionReady(_ServerFrame):
    type: Literal["connection_ready"] = "connection_ready"
    connection_id: str
    user_id: str
    protocol: str = SUBPROTOCOL
    heartbeat_interval_s: float
    server_time: datetime


class ChatAccepted(_ServerFrame):
    type: Literal["chat_accepted"] = "chat_accepted"
    id: str
    thread_id: str
    run_id: str
    # Extension of v1: the thread's epoch, so a client can resume before its first event.
    epoch: str | None = None


class Resumed(_ServerFrame):
    type: Literal["resumed"] = "resumed"
    thread_id: str
    recovered: bool
    replayed: int
    # Extension of v1: the thread's current epoch (what a REST backfill will carry).
    epoch: str | None = None


class Ping(_ServerFrame):
    type: Literal["ping"] = "ping"
    ts: float


class ErrorFrame(_ServerFrame):
    type: Literal["error"] = "error"
    code: ErrorCode
    message: str
    ref: str | None = None
    # Extension of v1: the thread of the resume this error answers (null otherwise), so a
    # client tells a refused resume from the ref-less errors of its acks and pongs.
    thread_id: str | None = None

    @classmethod
    def answering(
        cls, frame: ClientFrame | None, code: ErrorCode, message: str, *, ref: str | None = None
    ) -> ErrorFrame:
        """The error answering ``frame`` (None: one that could not be parsed), matched to
        it the way the client matches it: a chat's ``id`` as ``ref``, a resume's thread as
        ``thread_id``. ``ref`` is for a frame that could not be parsed but had an ``id``."""
        if isinstance(frame, ChatFrame):
            ref = frame.id
        thread_id = frame.thread_id if isinstance(frame, ResumeFrame) else None
        return cls(code=code, message=message, ref=ref, thread_id=thread_id)


def dump(frame: BaseModel) -> str:
    return frame.model_dump_json()
