"""Safe arithmetic: the expression is parsed with ``ast`` and walked over a whitelist.

Nothing is ever evaluated by Python itself: a name is looked up only in ``FUNCTIONS`` and
``CONSTANTS``, and any other node (attribute, subscript, call of anything else, string,
comprehension, lambda ...) is refused. Limits keep a request cheap: the expression's length,
its number of nodes, the size of an exponent and the magnitude of every intermediate value.
"""

from __future__ import annotations

import ast
import math
import operator
import re
import warnings
from collections.abc import Callable
from typing import Any

from core.agent.model import ToolSpec
from core.agent.tools.base import ToolContext, ToolError, object_schema, reject_unknown

MAX_EXPRESSION_CHARS = 200
MAX_NODES = 100
MAX_EXPONENT = 1000
MAX_MAGNITUDE = 1e100

Number = int | float

FUNCTIONS: dict[str, tuple[Callable[..., Number], tuple[int, int]]] = {
    # name: (implementation, (min arguments, max arguments))
    "sqrt": (math.sqrt, (1, 1)),
    "abs": (abs, (1, 1)),
    "round": (round, (1, 2)),
    "floor": (math.floor, (1, 1)),
    "ceil": (math.ceil, (1, 1)),
    "log": (math.log, (1, 2)),
    "log10": (math.log10, (1, 1)),
    "exp": (math.exp, (1, 1)),
    "sin": (math.sin, (1, 1)),
    "cos": (math.cos, (1, 1)),
    "tan": (math.tan, (1, 1)),
}
CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
# Anything outside this alphabet (quotes, backslashes, brackets, dots after names ...) is
# refused before parsing, so no string literal or attribute can even be written.
_ALPHABET = re.compile(r"[0-9A-Za-z_\s.+\-*/%(),]*")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")


def normalize(expression: str) -> str:
    """Accept the way people write: the signs for times, divide and minus, ^ for power,
    1,000 for 1000."""
    text = expression.replace("\u00d7", "*").replace("\u00f7", "/").replace("\u2212", "-")
    return _THOUSANDS.sub("", text.replace("^", "**")).strip()


def parse_expression(expression: str) -> ast.expr:
    """Parse and check against the whitelist; raise ``ToolError`` saying what is wrong."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ToolError(f"the expression is longer than {MAX_EXPRESSION_CHARS} characters")
    text = normalize(expression)
    if not text:
        raise ToolError("the expression is empty")
    if not _ALPHABET.fullmatch(text):
        raise ToolError("the expression may only contain numbers, + - * / // % ** ( ) and ,")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError) as exc:
        raise ToolError(f"{expression!r} is not a valid arithmetic expression") from exc
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise ToolError(f"the expression has more than {MAX_NODES} parts")
    _check(tree.body)
    return tree.body


def _check(node: ast.expr) -> None:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise ToolError(f"{node.value!r} is not a real number")
    elif isinstance(node, ast.Name):
        if node.id not in CONSTANTS:
            known = ", ".join(sorted(CONSTANTS))
            raise ToolError(f"unknown name {node.id!r} (the constants are {known})")
    elif isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        _check(node.left)
        _check(node.right)
    elif isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        _check(node.operand)
    elif isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            known = ", ".join(sorted(FUNCTIONS))
            raise ToolError(f"only these functions can be called: {known}")
        low, high = FUNCTIONS[node.func.id][1]
        if node.keywords or not low <= len(node.args) <= high:
            raise ToolError(
                f"{node.func.id} takes {low}-{high} plain arguments"
                if low != high
                else f"{node.func.id} takes {low} argument"
            )
        for argument in node.args:
            if isinstance(argument, ast.Starred):
                raise ToolError("starred arguments are not arithmetic")
            _check(argument)
    else:
        raise ToolError(f"{type(node).__name__} is not allowed in an arithmetic expression")


def evaluate(expression: str) -> Number:
    """The value of an arithmetic expression, or ``ToolError``; never ``eval``."""
    return _evaluate(parse_expression(expression))


def _evaluate(node: ast.expr) -> Number:
    if isinstance(node, ast.Constant):
        return _bounded(node.value)
    if isinstance(node, ast.Name):
        return CONSTANTS[node.id]
    if isinstance(node, ast.UnaryOp):
        return _bounded(_UNARY[type(node.op)](_evaluate(node.operand)))
    if isinstance(node, ast.BinOp):
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Div | ast.FloorDiv | ast.Mod) and right == 0:
            raise ToolError("division by zero")
        if isinstance(node.op, ast.Pow):
            return _power(left, right)
        return _bounded(_BINARY[type(node.op)](left, right))
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    name = node.func.id
    arguments = [_evaluate(argument) for argument in node.args]
    if (
        name == "round"
        and len(arguments) == 2
        and (not isinstance(arguments[1], int) or abs(arguments[1]) > 15)
    ):
        raise ToolError("round's second argument must be a whole number from -15 to 15")
    try:
        return _bounded(FUNCTIONS[name][0](*arguments))
    except (ValueError, OverflowError, ZeroDivisionError) as exc:
        raise ToolError(f"{name} is undefined for {', '.join(map(str, arguments))}") from exc


def _power(base: Number, exponent: Number) -> Number:
    if abs(exponent) > MAX_EXPONENT:
        raise ToolError(f"exponents are limited to ±{MAX_EXPONENT}")
    if base == 0 and exponent < 0:
        raise ToolError("division by zero")
    if abs(base) > 1 and exponent > 0 and exponent * math.log10(abs(base)) > 100:
        raise ToolError("the result is too large (more than 1e100)")
    try:
        result = base**exponent
    except OverflowError as exc:
        raise ToolError("the result is too large (more than 1e100)") from exc
    return _bounded(result)


def _bounded(value: object) -> Number:
    if isinstance(value, complex):
        raise ToolError("the result is not a real number")
    assert isinstance(value, int | float)
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolError("the result is too large (more than 1e100)")
    if abs(value) > MAX_MAGNITUDE:
        raise ToolError("the result is too large (more than 1e100)")
    return value


class Calculator:
    spec = ToolSpec(
        name="calculator",
        description=(
            "Evaluate an arithmetic expression exactly: numbers, + - * / // % ** (or ^), "
            "parentheses, pi, e and the functions " + ", ".join(sorted(FUNCTIONS)) + "."
        ),
        parameters=object_schema(
            {"expression": {"type": "string", "description": "e.g. (2 + 3) * 4 / 7"}},
            required=("expression",),
        ),
    )

    async def run(self, arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
        reject_unknown(arguments, self.spec)
        expression = arguments.get("expression")
        if not isinstance(expression, str):
            raise ToolError('expression must be a string, e.g. "2 + 3 * 4"')
        return {"expression": expression.strip(), "result": evaluate(expression)}
