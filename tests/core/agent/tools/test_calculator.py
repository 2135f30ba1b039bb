import ast
import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from core.agent.tools.base import ToolContext, ToolError
from core.agent.tools.calculator import CONSTANTS, FUNCTIONS, Calculator, evaluate
from tests.core.agent.fakes import FakeUsageSource

CTX = ToolContext(user_id="alice", usage_source=FakeUsageSource())


async def test_the_tool_returns_the_expression_and_its_value():
    result = await Calculator().run({"expression": " 2 + 3 × 4 "}, CTX)  # noqa: RUF001
    assert result == {"expression": "2 + 3 × 4", "result": 14}  # noqa: RUF001


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("2 + 3 * 4", 14),
        ("(2 + 3) * 4", 20),
        ("7 / 2", 3.5),
        ("7 // 2", 3),
        ("7 % 4", 3),
        ("2 ** 10", 1024),
        ("2^10", 1024),
        ("-3 * -(2 + 1)", 9),
        ("10 − 4 ÷ 2", 8.0),  # noqa: RUF001
        ("1,000 * 3", 3000),
        ("sqrt(16) + abs(-2)", 6.0),
        ("round(2.567, 2)", 2.57),
        ("floor(2.7) + ceil(2.1)", 5),
        ("log(8, 2)", 3.0),
        ("2 * pi", 2 * math.pi),
        ("1e3 + 1", 1001.0),
    ],
)
def test_arithmetic_is_evaluated_exactly(expression, value):
    assert evaluate(expression) == value


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("1 / 0", "division by zero"),
        ("5 // 0", "division by zero"),
        ("5 % 0.0", "division by zero"),
        ("0 ** -1", "division by zero"),
        ("2 ** 100000", "exponents are limited"),
        ("10 ** 101", "too large"),
        ("1e99 * 1e99", "too large"),
        ("9" * 150, "too large"),
        ("1e400", "too large"),
        ("exp(1000)", "exp is undefined"),
        ("sqrt(-1)", "sqrt is undefined"),
        ("(-8) ** 0.5", "not a real number"),
        ("1 + " * 60 + "1", "longer than 200 characters"),
        ("+".join(["1"] * 60), "more than 100 parts"),
        ("round(2.5, 1.5)", "round's second argument"),
        ("round(1, 2, 3)", "round takes 1-2"),
        ("", "empty"),
        ("2 +", "not a valid arithmetic expression"),
    ],
)
def test_bad_or_abusive_expressions_are_refused_with_a_clear_message(expression, message):
    with pytest.raises(ToolError, match=message):
        evaluate(expression)


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os').system('true')",
        "open('/etc/passwd')",
        "(1).__class__",
        "x + 1",
        "pi.real",
        "eval(1)",
        "print(1)",
        "[1, 2]",
        "1 if 1 else 2",
        "lambda: 1",
        "1 < 2",
        "True + 1",
        "2j * 2",
        "1 & 1",
        "sqrt(x=4)",
        "sqrt(*[4])",
    ],
)
def test_anything_outside_the_whitelist_is_refused(expression):
    with pytest.raises(ToolError):
        evaluate(expression)


async def test_arguments_other_than_the_expression_are_refused():
    with pytest.raises(ToolError, match="does not take user_id"):
        await Calculator().run({"expression": "1+1", "user_id": "bob"}, CTX)
    with pytest.raises(ToolError, match="must be a string"):
        await Calculator().run({"expression": 12}, CTX)


WHITELISTED_NAMES = set(FUNCTIONS) | set(CONSTANTS)
FRAGMENTS = st.sampled_from(
    [
        *"0123456789",
        "1.5", "1e3", "+", "-", "*", "/", "//", "%", "**", "^", "(", ")", ",", " ", ".",
        "sqrt(", "round(", "pi", "e", "x", "os", "__import__(", "open(", ".real", "'a'",
        "[", "]", "lambda", ":", "if", "else", "True", "__class__", "j", "×", "−", "\\",  # noqa: RUF001
    ]
)  # fmt: skip


def names_in(expression: str) -> set[str]:
    try:
        tree = ast.parse(expression.replace("^", "**"), mode="eval")
    except SyntaxError:
        return set()
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}


@given(st.one_of(st.text(max_size=250), st.lists(FRAGMENTS, max_size=40).map("".join)))
def test_random_input_yields_a_real_number_or_a_tool_error_and_nothing_else(expression):
    try:
        value = evaluate(expression)
    except ToolError:
        return
    assert isinstance(value, int | float) and not isinstance(value, bool)
    assert math.isfinite(value) and abs(value) <= 1e100
    assert names_in(expression) <= WHITELISTED_NAMES


def arithmetic() -> st.SearchStrategy[str]:
    numbers = st.integers(min_value=0, max_value=1000).map(str)
    return st.recursive(
        numbers,
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "//", "%"]), inner).map(
                lambda parts: f"({parts[0]} {parts[1]} {parts[2]})"
            ),
            inner.map(lambda operand: f"-{operand}"),
        ),
        max_leaves=8,
    )


@given(arithmetic())
def test_plain_arithmetic_agrees_with_python(expression):
    try:
        expected = eval(expression, {"__builtins__": {}})  # Test oracle only.
    except ZeroDivisionError:
        with pytest.raises(ToolError, match="division by zero"):
            evaluate(expression)
        return
    assume(len(expression) <= 200)
    assert evaluate(expression) == expected
