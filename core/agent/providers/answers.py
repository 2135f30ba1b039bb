"""The offline agent's words: answers written from tool results, and direct replies.

Every figure in an answer comes from a tool result; nothing here computes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from core.agent.model import Message, ToolCall

CAPABILITIES = (
    "I can do arithmetic (try \u201cwhat is 2 + 3 \u00d7 4?\u201d), "
    "price a workload on common models (try \u201chow much do 1M input tokens cost on "
    "gpt-4o?\u201d) and report your own usage (try \u201cshow my usage\u201d)."
)


def direct_answer(intent: str) -> str:
    if intent == "greeting":
        return f"Hello! I'm Vigil's built-in offline agent. {CAPABILITIES}"
    return (
        "I'm Vigil's built-in offline agent, so I can't answer open questions, "
        f"but I can help with three things. {CAPABILITIES}"
    )


def compose_answer(calls: Mapping[str, ToolCall], results: Sequence[Message]) -> str:
    """One paragraph per tool result, in the order the results came."""
    paragraphs = []
    for message in results:
        call = calls.get(message.tool_call_id or "")
        name = message.name or (call.name if call else "tool")
        arguments = call.arguments if call else {}
        result, error = parse_result(message.content)
        if result is None:
            paragraphs.append(_failure(name, arguments, error or "no result"))
        elif name == "calculator":
            paragraphs.append(f"{result['expression']} = {format_number(result['result'])}")
        elif name == "token_cost":
            paragraphs.append(_cost_answer(result))
        elif name == "usage_report":
            paragraphs.append(_usage_answer(result))
        else:
            paragraphs.append(f"{name} returned {json.dumps(result)}")
    return "\n\n".join(paragraphs)


def parse_result(content: str) -> tuple[dict[str, Any] | None, str | None]:
    """A tool message's content as (result, error): the JSON of a result or of an error."""
    try:
        body = json.loads(content)
    except ValueError:
        return None, content
    if not isinstance(body, dict):
        return None, f"unexpected result {content[:80]}"
    if body.get("status") == "error" and "error" in body:
        return None, str(body["error"])
    return body, None


def _failure(name: str, arguments: Mapping[str, Any], error: str) -> str:
    if name == "calculator" and "expression" in arguments:
        return f"I could not compute {arguments['expression']}: {error}."
    if name == "token_cost":
        return f"I could not price that: {error}."
    if name == "usage_report":
        return f"I could not read your usage: {error}."
    return f"{name} failed: {error}."


def format_number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and not (value.is_integer() and abs(value) < 1e15):
        return f"{value:.12g}"
    return f"{int(value):,}"


def usd(amount: float) -> str:
    if amount == 0 or amount >= 0.01:
        return f"${amount:,.2f}"
    return f"${amount:.6f}".rstrip("0")


def _workload(result: Mapping[str, Any]) -> str:
    tokens = [
        f"{result[key]:,} {kind} tokens"
        for key, kind in (("input_tokens", "input"), ("output_tokens", "output"))
        if result[key]
    ]
    text = " and ".join(tokens)
    if result["requests"] > 1:
        text += f" per request \u00d7 {result['requests']:,} requests"
    return text


def _cost_answer(result: Mapping[str, Any]) -> str:
    as_of = result["prices_as_of"]
    priced = result["input_tokens"] or result["output_tokens"]
    if "models" in result:
        return _comparison(result["models"], _workload(result) if priced else None, as_of)
    rates = (
        f"{usd(result['usd_per_1m_input'])} per 1M input tokens and "
        f"{usd(result['usd_per_1m_output'])} per 1M output tokens"
    )
    if not priced:
        source = f"{result['provider']} list prices as of {as_of}"
        return f"{result['model']} lists at {rates} ({source})."
    return (
        f"{_workload(result)} on {result['model']} cost {usd(result['total_cost_usd'])} "
        f"({usd(result['input_cost_usd'])} input + {usd(result['output_cost_usd'])} output, "
        f"at {rates}; list prices as of {as_of})."
    )


def _comparison(models: Sequence[Mapping[str, Any]], workload: str | None, as_of: str) -> str:
    if workload is None:
        lines = [
            f"- {m['model']} ({m['provider']}): {usd(m['usd_per_1m_input'])} input / "
            f"{usd(m['usd_per_1m_output'])} output"
            for m in sorted(models, key=lambda m: (m["usd_per_1m_input"], m["model"]))
        ]
        return f"List prices per 1M tokens as of {as_of}:\n" + "\n".join(lines)
    cheapest, dearest = models[0], models[-1]
    lines = [f"- {m['model']} ({m['provider']}): {usd(m['total_cost_usd'])}" for m in models]
    return (
        f"For {workload}, at list prices as of {as_of}, the cheapest is {cheapest['model']} "
        f"at {usd(cheapest['total_cost_usd'])} and the most expensive {dearest['model']} "
        f"at {usd(dearest['total_cost_usd'])}:\n" + "\n".join(lines)
    )


def _duration(ms: float) -> str:
    return f"{ms / 1000:.1f} s" if ms >= 1000 else f"{ms:.0f} ms"


def _usage_answer(result: Mapping[str, Any]) -> str:
    total = result["runs_total"]
    if not total:
        return "You have not run any chats yet."
    by_status = [f"{count:,} {status}" for status, count in result["runs_by_status"].items()]
    text = f"You have run {total:,} chat{'s' if total != 1 else ''}"
    text += f": {_join(by_status)}." if by_status else "."
    text += (
        f" They used {result['input_tokens']:,} input and {result['output_tokens']:,} output "
        f"tokens ({result['total_tokens']:,} in total)."
    )
    mean, p95 = result.get("mean_duration_ms"), result.get("p95_duration_ms")
    if mean is not None and p95 is not None:
        text += f" A run takes {_duration(mean)} on average and {_duration(p95)} at p95."
    return text


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
