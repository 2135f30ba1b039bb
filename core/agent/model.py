"""The types every model provider speaks, whatever is behind it.

A conversation is a sequence of ``Message``; a provider answers it with a ``ModelReply``
that either asks for tool calls or carries the final text. Providers translate their own
failures into one exception, at their edge::

    ProviderError(reason)
      reason = provider_timeout       the endpoint did not answer in time
             | provider_unreachable   connection refused, DNS, TLS, reset
             | provider_http_error    a non-2xx status other than 401/403
             | provider_bad_response  malformed JSON or missing fields
             | provider_refused       401/403: the key is wrong or lacks access
             | circuit_open           raised by the runner, never by a provider
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, get_args

Role = Literal["system", "user", "assistant", "tool"]

ProviderErrorReason = Literal[
    "provider_timeout",
    "provider_unreachable",
    "provider_http_error",
    "provider_bad_response",
    "provider_refused",
    "circuit_open",
]
PROVIDER_ERROR_REASONS: frozenset[str] = frozenset(get_args(ProviderErrorReason))


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool as a model sees it; ``parameters`` is a JSON schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolCall:
    call_id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int
    output_tokens: int

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens
        )

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    # On a "tool" message: which call this is the result of, and the tool's name.
    tool_call_id: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class ModelReply:
    """One model turn: tool calls to make, or (with none) the final answer in ``text``.

    ``thinking`` is one short sentence saying what the model decided; the run shows it to
    the user in an ``agent_thinking`` event.
    """

    text: str
    tool_calls: tuple[ToolCall, ...]
    usage: Usage
    thinking: str


class ModelProvider(Protocol):
    name: str
    model: str

    async def complete(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> ModelReply: ...

    async def aclose(self) -> None: ...


class ProviderError(Exception):
    """The model call failed; ``reason`` is one of ``PROVIDER_ERROR_REASONS``."""

    def __init__(
        self, reason: ProviderErrorReason, message: str, *, status_code: int | None = None
    ) -> None:
        if reason not in PROVIDER_ERROR_REASONS:
            raise ValueError(f"unknown provider error reason {reason!r}")
        super().__init__(message)
        self.reason: ProviderErrorReason = reason
        self.status_code = status_code
