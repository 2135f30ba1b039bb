import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.agent.triage import find_expressions, parse_workload, triage


def planned(text: str) -> list[tuple[str, dict]]:
    return [(call.tool, call.arguments) for call in triage(text).calls]


def test_arithmetic_goes_to_the_calculator_with_the_expression_as_written():
    result = triage("What is 2 + 3 × 4?")  # noqa: RUF001
    assert (result.intent, result.tools) == ("calculate", ("calculator",))
    assert planned("What is 2 + 3 × 4?") == [("calculator", {"expression": "2 + 3 × 4"})]  # noqa: RUF001
    assert "2 + 3 × 4" in result.summary  # noqa: RUF001


@pytest.mark.parametrize(
    ("text", "expressions"),
    [
        ("calculate (17 - 5) / 4", ["(17 - 5) / 4"]),
        ("what is 12 times 7 plus 1", ["12 * 7 + 1"]),
        ("square root of 81?", ["sqrt(81)"]),
        ("what's 2^10", ["2^10"]),
        ("round(2.567, 2) please", ["round(2.567, 2)"]),
        ("what is -3 * 2", ["-3 * 2"]),
        ("2+2, and 3*3", ["2+2", "3*3"]),
        ("(see 3 + 4) ok", ["3 + 4"]),
        ("what is 10-3", ["10-3"]),
        ("1,200 * 3", ["1,200 * 3"]),
    ],
)
def test_expressions_are_found_in_ordinary_sentences(text, expressions):
    assert find_expressions(text.lower()) == expressions


@pytest.mark.parametrize(
    "text",
    [
        "read pages 3-5",
        "meet me on 2024-05-01",
        "is gpt-4.1 better than gpt-4o?",
        "I have 3 questions",
        "version 3.11 is out",
        "the answer is 42.",
    ],
)
def test_numbers_that_are_not_arithmetic_do_not_call_the_calculator(text):
    assert "calculator" not in triage(text).tools


def test_a_cost_question_names_the_model_and_the_token_counts():
    assert planned("How much do 1,000,000 input tokens cost on gpt-4o?") == [
        ("token_cost", {"model": "gpt-4o", "input_tokens": 1_000_000})
    ]


def test_a_comparison_prices_each_named_model_for_the_same_workload():
    text = "compare gpt-4o-mini vs claude 3.5 haiku for 2M input and 500k output tokens"
    workload = {"input_tokens": 2_000_000, "output_tokens": 500_000}
    assert planned(text) == [
        ("token_cost", {"model": "gpt-4o-mini", **workload}),
        ("token_cost", {"model": "claude-3.5-haiku", **workload}),
    ]


def test_a_cost_question_without_a_model_compares_every_model():
    result = triage("what would 10k tokens cost?")
    assert planned("what would 10k tokens cost?") == [("token_cost", {"input_tokens": 10_000})]
    assert "every model" in result.summary


@pytest.mark.parametrize(
    ("text", "workload"),
    [
        (
            "1m input tokens and 200k output tokens",
            {"input_tokens": 10**6, "output_tokens": 2 * 10**5},
        ),
        ("2.5 million prompt tokens", {"input_tokens": 2_500_000}),
        ("300 completion tokens over 40 requests", {"output_tokens": 300, "requests": 40}),
        ("5,000 tokens out", {"output_tokens": 5000}),
        ("no numbers here", {}),
    ],
)
def test_token_counts_are_read_with_their_units(text, workload):
    assert parse_workload(text) == workload


def test_a_model_name_alone_is_not_a_cost_question():
    assert triage("is gpt-4o any good?").tools == ()


@pytest.mark.parametrize(
    "text",
    ["show my usage", "How many tokens have I used?", "what are my stats", "list my runs"],
)
def test_questions_about_my_own_usage_go_to_usage_report(text):
    assert planned(text) == [("usage_report", {})]
    assert triage(text).intent == "usage_report"


def test_one_message_can_ask_for_several_tools():
    result = triage("what is 6*7, how much does gpt-4o cost, and how many runs did I make?")
    assert result.intent == "multi_tool"
    assert result.tools == ("calculator", "token_cost", "usage_report")
    assert result.summary == (
        "I'll compute 6*7 with the calculator, price gpt-4o from the list-price table "
        "(as of 2025-07-01) and look up your own usage."
    )


def test_a_long_list_of_sums_is_capped_without_crowding_out_other_requests():
    result = triage("1+1, 2+2, 3+3, 4+4, 5+5, 6+6 and show my usage")
    assert [call.tool for call in result.calls] == ["calculator"] * 4 + ["usage_report"]
    assert result.summary == (
        "I'll compute 1+1, 2+2, 3+3 and 4+4 with the calculator and look up your own usage."
    )


@pytest.mark.parametrize("text", ["hello", "Hi there!", "good morning, Vigil", "thanks"])
def test_a_greeting_needs_no_tool(text):
    result = triage(text)
    assert (result.intent, result.tools, result.calls) == ("greeting", (), ())


def test_anything_else_is_answered_without_tools():
    result = triage("Tell me a story about a lighthouse.")
    assert (result.intent, result.tools) == ("chat", ())
    assert result.summary


def test_triage_is_deterministic():
    text = "what is 2+2 and what do my tokens cost on o3"
    assert triage(text) == triage(text)


@pytest.mark.parametrize(
    "text",
    ["(" * 8000, "1+" * 4000, "sqrt(" * 1600, "1 " * 4000, "1,000 tokens cost " * 400],
)
def test_pathological_messages_of_the_maximum_length_are_triaged_without_error(text):
    result = triage(text)
    assert "calculator" not in result.tools


@given(st.text(max_size=300))
def test_triage_never_fails_and_only_plans_known_tools(text):
    result = triage(text)
    assert set(result.tools) <= {"calculator", "token_cost", "usage_report"}
    assert {call.tool for call in result.calls} == set(result.tools)
    assert len(result.calls) <= 5
    assert result.summary
