"""Triage: what a user message asks for, decided by rules alone (no model, no I/O).

It names the tools a message needs and plans their calls with arguments read from the text:
arithmetic for ``calculator``, model prices for ``token_cost`` (model names and token
counts), the user's own usage for ``usage_report``. A message may ask for several things.
The run shows ``summary`` to the user; the offline agent follows ``calls``.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

from core.agent.tools.base import ToolError
from core.agent.tools.calculator import FUNCTIONS, MAX_EXPRESSION_CHARS, parse_expression
from core.agent.tools.prices import load_price_table

MAX_CALLS = 5


@dataclass(frozen=True, slots=True)
class PlannedCall:
    tool: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Triage:
    intent: str  # calculate | token_cost | usage_report | multi_tool | greeting | chat
    tools: tuple[str, ...]
    summary: str
    calls: tuple[PlannedCall, ...] = field(default=())


def triage(text: str) -> Triage:
    lowered = text.lower()
    table = load_price_table()
    mentions = table.mentions(lowered)
    others: list[PlannedCall] = []
    models = list(dict.fromkeys(model for _, _, model in mentions))[: MAX_CALLS - 1]
    if _asks_cost(lowered, has_models=bool(models)):
        workload = parse_workload(lowered)
        targets: list[dict[str, Any]] = [{"model": model} for model in models] or [{}]
        others += [PlannedCall("token_cost", {**target, **workload}) for target in targets]
    if _USAGE.search(lowered):
        others.append(PlannedCall("usage_report", {}))
    # Model names are not arithmetic ("claude-3-5-haiku" is no subtraction).
    expressions = find_expressions(_blank(lowered, [(s, e) for s, e, _ in mentions]))
    calls = [
        PlannedCall("calculator", {"expression": expression})
        for expression in expressions[: MAX_CALLS - len(others)]
    ] + others

    tools = tuple(dict.fromkeys(call.tool for call in calls))
    if len(tools) > 1:
        intent = "multi_tool"
    elif tools:
        intent = {"calculator": "calculate"}.get(tools[0], tools[0])
    elif _GREETING.match(lowered):
        intent = "greeting"
    else:
        intent = "chat"
    return Triage(intent, tools, _summary(intent, calls, table.as_of), tuple(calls))


def _summary(intent: str, calls: list[PlannedCall], as_of: str) -> str:
    if intent == "greeting":
        return "A greeting: no tool is needed, I'll answer directly."
    if not calls:
        return "No tool fits this message, so I'll answer directly."
    parts = []
    expressions = [c.arguments["expression"] for c in calls if c.tool == "calculator"]
    if expressions:
        parts.append(f"compute {_join(expressions)} with the calculator")
    prices = [c.arguments.get("model") for c in calls if c.tool == "token_cost"]
    if prices:
        what = _join([p for p in prices if p]) or "every model in the table"
        parts.append(f"price {what} from the list-price table (as of {as_of})")
    if any(c.tool == "usage_report" for c in calls):
        parts.append("look up your own usage")
    return f"I'll {_join(parts)}."


# Arithmetic ---------------------------------------------------------------------------

_WORDS = [
    (re.compile(r"square root of\s*(\d+(?:\.\d+)?)"), r"sqrt(\1)"),
    (re.compile(r"(\d)\s+squared\b"), r"\1 ** 2"),
    (re.compile(r"\bplus\b"), "+"),
    (re.compile(r"\bminus\b"), "-"),
    (re.compile(r"\b(?:times|multiplied by)\b"), "*"),
    (re.compile(r"\bdivided by\b"), "/"),
    (re.compile(r"\bto the power of\b"), "^"),
    (re.compile(r"\bmod(?:ulo)?\b"), "%"),
    (re.compile(r"(?<=\d) x (?=\d)"), " * "),
]
_FUNCTION_NAMES = "|".join(sorted(FUNCTIONS, key=len, reverse=True))
_START = re.compile(rf"\d|\.\d|\(|(?:{_FUNCTION_NAMES})\s*\(|pi\b|[-\u2212]\s*[\d(]")
_PIECE = re.compile(
    rf"\s*(?:\d+(?:,\d{{3}})*(?:\.\d+)?|\.\d+|(?:{_FUNCTION_NAMES})(?=\s*\()|pi\b"
    r"|\*\*|//|[-+*/%^\u00d7\u00f7\u2212(),])"
)
_MATH_CUE = re.compile(
    r"\b(?:calculate|compute|evaluate|solve|what(?:'s|\u2019s| is)|how much is)\b"
)
_OPERATOR = re.compile(r"[-+*/%^\u00d7\u00f7\u2212(]")


def find_expressions(text: str) -> list[str]:
    """The arithmetic expressions in a text, in order (at most ``MAX_CALLS``)."""
    for pattern, replacement in _WORDS:
        text = pattern.sub(replacement, text)
    cue = bool(_MATH_CUE.search(text))
    found: list[str] = []
    position = 0
    while position < len(text) and len(found) < MAX_CALLS:
        start = _START.search(text, position)
        if start is None:
            break
        begin = start.start()
        if begin > 0 and (text[begin - 1].isalnum() or text[begin - 1] in "_.-"):
            position = begin + 1
            continue
        end = _run_end(text, begin)
        # A run longer than any acceptable expression is not worth trimming.
        candidate = _trim(text[begin:end]) if end - begin <= 2 * MAX_EXPRESSION_CHARS else ""
        if candidate and _is_arithmetic(candidate, cue):
            found.append(candidate)
        position = max(end, begin + 1)
    return found


def _run_end(text: str, begin: int) -> int:
    """Where a run of arithmetic pieces starting at ``begin`` ends; a comma belongs to it
    only inside parentheses (``round(2.5, 1)``), so "2+2, 3*3" is two expressions."""
    end, depth = begin, 0
    while (piece := _PIECE.match(text, end)) and piece.end() > end:
        found = piece.group().strip()
        if found == ")":
            if depth == 0:
                break
            depth -= 1
        elif found == "(":
            depth += 1
        elif found == "," and depth == 0:
            break
        end = piece.end()
    return end


def _trim(candidate: str) -> str:
    candidate = candidate.strip().rstrip("+-*/%^\u00d7\u00f7\u2212,. ")
    while candidate.startswith("(") and candidate.count("(") > candidate.count(")"):
        candidate = candidate[1:].lstrip()
    while candidate.endswith(")") and candidate.count(")") > candidate.count("("):
        candidate = candidate[:-1].rstrip()
    return candidate


def _is_arithmetic(candidate: str, cue: bool) -> bool:
    if len(candidate) > MAX_EXPRESSION_CHARS or not _OPERATOR.search(candidate, 1):
        return False
    try:
        tree = parse_expression(candidate)
    except ToolError:
        return False
    operators = [node.op for node in ast.walk(tree) if isinstance(node, ast.BinOp)]
    if any(isinstance(node, ast.Call) for node in ast.walk(tree)):
        return True
    if not operators:
        return False
    # "pages 3-5" is a range; "3 - 5", "3*5" or "what is 3-5" is arithmetic.
    only_tight_minus = all(isinstance(op, ast.Sub) for op in operators) and " " not in candidate
    return cue or not only_tight_minus


# Token costs --------------------------------------------------------------------------

_COST = re.compile(
    r"\b(?:costs?|costing|price[sd]?|pricing|how much|cheap(?:er|est)?|expensive|spend"
    r"|bill|budget|dollars?|usd)\b|\$"
)
_COMPARE = re.compile(r"\b(?:compare|comparison|vs\.?|versus)\b")
_TOKEN_WORD = re.compile(r"\btokens?\b")
_NUMBER = r"(\d+(?:,\d{3})*(?:\.\d+)?)\s*(k|m|mn|b|thousand|million|billion)?"
_SCALE = {"k": 10**3, "thousand": 10**3, "m": 10**6, "mn": 10**6, "million": 10**6}
_SCALE |= {"b": 10**9, "billion": 10**9}
_TOKENS = re.compile(
    rf"{_NUMBER}\s+(?:(input|prompt|output|completion)\b(?:\s+tokens?\b)?"
    r"|tokens?\b(?:\s+(in|out)\b)?)"
)
_REQUESTS = re.compile(rf"{_NUMBER}\s+(?:requests?|calls?|queries|messages|chats|runs)\b")


def _asks_cost(text: str, *, has_models: bool) -> bool:
    if _COST.search(text):
        return has_models or bool(_TOKEN_WORD.search(text))
    return has_models and bool(_COMPARE.search(text))


def parse_workload(text: str) -> dict[str, int]:
    """Token counts and a request count, as far as the text states them."""
    workload: dict[str, int] = {}
    for match in _TOKENS.finditer(text):
        count = _count(match.group(1), match.group(2))
        kind = match.group(3) or match.group(4) or "input"
        key = "output_tokens" if kind in ("output", "completion", "out") else "input_tokens"
        workload.setdefault(key, count)
    if requests := _REQUESTS.search(text):
        workload["requests"] = max(1, _count(requests.group(1), requests.group(2)))
    return workload


def _count(number: str, scale: str | None) -> int:
    value = float(number.replace(",", "")) * _SCALE.get(scale or "", 1)
    return min(round(value), 10**13)


# Usage and greetings ------------------------------------------------------------------

_USAGE = re.compile(
    r"\bmy\s+(?:own\s+)?(?:usage|runs?|tokens?|chats?|stats|statistics|history|activity"
    r"|spend(?:ing)?|consumption)\b"
    r"|\bhow many\s+(?:runs|chats|messages|requests|tokens)\s+(?:have|did)\s+i\b"
    r"|\b(?:have|did)\s+i\s+(?:used|run|spent|made|sent)\b"
    r"|\busage report\b"
)
_GREETING = re.compile(
    r"\s*(?:hi|hello|hey|howdy|hiya|yo|greetings|good (?:morning|afternoon|evening)"
    r"|thanks|thank you)\b"
)


def _blank(text: str, spans: list[tuple[int, int]]) -> str:
    chars = list(text)
    for start, end in spans:
        chars[start:end] = " " * (end - start)
    return "".join(chars)


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
