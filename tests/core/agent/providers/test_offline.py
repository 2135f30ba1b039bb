import itertools
import math

import pytest

from core.agent.model import Message, ToolCall
from core.agent.providers import build_provider
from core.agent.providers.offline import OfflineProvider, estimate_tokens
from core.agent.tools.base import ToolContext
from core.agent.tools.calculator import Calculator
from core.agent.tools.registry import ToolRegistry, default_registry
from core.settings import load_settings
from tests.core.agent.fakes import FakeUsageSource, Summary, converse


@pytest.fixture
def provider() -> OfflineProvider:
    counter = itertools.count(1)
    return OfflineProvider(call_id=lambda: f"call_{next(counter)}")


@pytest.fixture
def usage() -> FakeUsageSource:
    return FakeUsageSource(
        {"alice": Summary(7, {"completed": 6, "failed": 1}, 1234, 567, 812.0, 2100.0)}
    )


@pytest.fixture
def ctx(usage: FakeUsageSource) -> ToolContext:
    return ToolContext(user_id="alice", usage_source=usage)


async def test_a_greeting_is_answered_directly_with_what_vigil_can_do(provider, ctx):
    transcript = await converse(provider, default_registry(), ctx, "Hello!")
    assert len(transcript.replies) == 1 and transcript.calls == []
    assert transcript.text.startswith("Hello! I'm Vigil's built-in offline agent.")
    assert "arithmetic" in transcript.text and "your own usage" in transcript.text
    assert transcript.replies[0].thinking == "No tool is needed; answering directly."


async def test_an_open_question_gets_an_honest_direct_answer(provider, ctx):
    transcript = await converse(provider, default_registry(), ctx, "Write me a poem")
    assert transcript.calls == []
    assert "can't answer open questions" in transcript.text


async def test_arithmetic_takes_one_calculator_call_and_answers_with_the_value(provider, ctx):
    transcript = await converse(provider, default_registry(), ctx, "what is 2 + 3 × 4?")  # noqa: RUF001
    assert transcript.calls == [ToolCall("call_1", "calculator", {"expression": "2 + 3 × 4"})]  # noqa: RUF001
    assert transcript.text == "2 + 3 × 4 = 14"  # noqa: RUF001
    assert [reply.thinking for reply in transcript.replies] == [
        "Calling calculator (1 call).",
        "Writing the answer from 1 tool result.",
    ]


async def test_a_cost_question_is_answered_with_the_figures_from_the_table(provider, ctx):
    transcript = await converse(
        provider, default_registry(), ctx, "How much do 1,000,000 input tokens cost on gpt-4o?"
    )
    assert [call.name for call in transcript.calls] == ["token_cost"]
    assert transcript.text == (
        "1,000,000 input tokens on gpt-4o cost $2.50 ($2.50 input + $0.00 output, at $2.50 "
        "per 1M input tokens and $10.00 per 1M output tokens; list prices as of 2025-07-01)."
    )


async def test_a_price_question_without_counts_states_the_rates(provider, ctx):
    transcript = await converse(provider, default_registry(), ctx, "what does o3 cost?")
    assert transcript.text == (
        "o3 lists at $2.00 per 1M input tokens and $8.00 per 1M output tokens "
        "(OpenAI list prices as of 2025-07-01)."
    )


async def test_a_comparison_names_the_cheapest_and_the_dearest(provider, ctx):
    text = "what would 1M input tokens and 1M output tokens cost?"
    transcript = await converse(provider, default_registry(), ctx, text)
    assert transcript.calls[0].arguments == {"input_tokens": 10**6, "output_tokens": 10**6}
    assert "the most expensive claude-opus-4 at $90.00" in transcript.text
    assert "- gpt-4o (OpenAI): $12.50" in transcript.text


async def test_a_usage_question_reports_the_users_own_runs(provider, ctx, usage):
    transcript = await converse(provider, default_registry(), ctx, "show me my usage")
    assert usage.asked == ["alice"]
    assert transcript.text == (
        "You have run 7 chats: 6 completed and 1 failed. They used 1,234 input and 567 output "
        "tokens (1,801 in total). A run takes 812 ms on average and 2.1 s at p95."
    )


async def test_several_tools_in_one_turn_are_all_answered_in_order(provider, ctx):
    text = "what is (17 - 5) / 4 and 2^10, and how many runs did I make?"
    transcript = await converse(provider, default_registry(), ctx, text)
    assert [call.name for call in transcript.calls] == ["calculator", "calculator", "usage_report"]
    assert len({call.call_id for call in transcript.calls}) == 3
    assert len(transcript.replies) == 2
    assert transcript.replies[0].thinking == "Calling calculator, usage_report (3 calls)."
    paragraphs = transcript.text.split("\n\n")
    assert paragraphs[:2] == ["(17 - 5) / 4 = 3", "2^10 = 1,024"]
    assert paragraphs[2].startswith("You have run 7 chats")


async def test_a_tool_error_is_explained_in_the_answer(provider, ctx):
    transcript = await converse(provider, default_registry(), ctx, "what is 10 / (5 - 5)?")
    assert transcript.results[0]["status"] == "error"
    assert transcript.text == "I could not compute 10 / (5 - 5): division by zero."


async def test_only_tools_on_offer_are_called(provider, ctx):
    registry = ToolRegistry([Calculator()])
    transcript = await converse(provider, registry, ctx, "what is 6*7 and show my usage")
    assert [call.name for call in transcript.calls] == ["calculator"]
    assert transcript.text == "6*7 = 42"


async def test_usage_is_a_deterministic_estimate_of_characters_over_four(provider):
    messages = [Message("system", "x" * 10), Message("user", "hello")]
    first = await provider.complete(messages, [])
    second = await provider.complete(messages, [])
    assert first.usage == second.usage
    assert first.usage.input_tokens == math.ceil(10 / 4) + math.ceil(5 / 4)
    assert first.usage.output_tokens == estimate_tokens(first.text) > 0


async def test_the_tool_specs_count_towards_input_tokens(provider):
    messages = [Message("user", "hello")]
    bare = await provider.complete(messages, [])
    with_tools = await provider.complete(messages, default_registry().specs())
    assert with_tools.usage.input_tokens > bare.usage.input_tokens


async def test_call_ids_are_unique_by_default():
    provider = OfflineProvider()
    reply = await provider.complete([Message("user", "1+1 and 2+2")], default_registry().specs())
    ids = [call.call_id for call in reply.tool_calls]
    assert len(ids) == len(set(ids)) == 2
    assert all(call_id.startswith("call_") for call_id in ids)
    await provider.aclose()


def test_the_offline_provider_is_the_default():
    provider = build_provider(load_settings(provider="offline"))
    assert isinstance(provider, OfflineProvider)
    assert (provider.name, provider.model) == ("offline", "vigil-offline-1")
