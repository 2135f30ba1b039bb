"""What a tool is, what it gets to work with, and how it says no.

A tool refuses bad arguments with ``ToolError`` and a message meant for the user (the run
reports it as ``tool_completed`` with status ``error``); any other exception is a bug.
Tools read their caller's identity from ``ToolContext``, never from their arguments.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from core.agent.model import ToolSpec


class ToolError(Exception):
    """The tool cannot do what was asked; the message says why, in words for the user."""


class UsageSummary(Protocol):
    """What ``UsageSource.usage_summary`` returns: one user's runs, all time."""

    @property
    def runs_total(self) -> int: ...
    @property
    def runs_by_status(self) -> Mapping[str, int]: ...
    @property
    def input_tokens(self) -> int: ...
    @property
    def output_tokens(self) -> int: ...
    @property
    def mean_duration_ms(self) -> float | None: ...
    @property
    def p95_duration_ms(self) -> float | None: ...


class UsageSource(Protocol):
    """Where usage comes from (the repository in the app, a fake in tests).

    Returns an object shaped like ``UsageSummary``.
    """

    async def usage_summary(self, user_id: str) -> Any: ...


@dataclass(frozen=True, slots=True)
class ToolContext:
    user_id: str
    usage_source: UsageSource


class Tool(Protocol):
    @property
    def spec(self) -> ToolSpec: ...

    async def run(self, arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]: ...


def object_schema(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """A JSON schema for an arguments object that admits no other keys."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


def reject_unknown(arguments: Mapping[str, Any], spec: ToolSpec) -> None:
    allowed = set(spec.parameters.get("properties", {}))
    unknown = sorted(set(arguments) - allowed)
    if unknown:
        takes = ", ".join(sorted(allowed)) or "no arguments"
        raise ToolError(f"{spec.name} does not take {', '.join(unknown)} (it takes {takes})")


def int_argument(
    arguments: Mapping[str, Any], key: str, *, default: int, minimum: int, maximum: int
) -> int:
    """An integer argument; a whole float (``1000000.0``) is accepted, a bool is not."""
    value = arguments.get(key, default)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ToolError(f"{key} must be a whole number, not {value!r}")
    if not minimum <= value <= maximum:
        raise ToolError(f"{key} must be between {minimum:,} and {maximum:,}, not {value:,}")
    return value


def str_argument(arguments: Mapping[str, Any], key: str, *, required: bool) -> str | None:
    value = arguments.get(key)
    if value is None:
        if required:
            raise ToolError(f"{key} is required")
        return None
    if not isinstance(value, str):
        raise ToolError(f"{key} must be a string, not {type(value).__name__}")
    return value
