import json
from importlib import resources

import pytest

from core.agent.tools.base import ToolContext, ToolError
from core.agent.tools.prices import load_price_table
from core.agent.tools.token_cost import TokenCost
from tests.core.agent.fakes import FakeUsageSource

CTX = ToolContext(user_id="alice", usage_source=FakeUsageSource())


def test_the_price_table_is_dated_and_says_its_prices_are_list_prices():
    raw = json.loads(resources.files("core.agent.tools").joinpath("prices.json").read_text())
    assert raw["as_of"] == "2025-07-01"
    assert "list prices" in raw["note"].lower() and raw["as_of"] in raw["note"]
    assert len(raw["models"]) >= 12
    for entry in raw["models"]:
        assert entry["input"] > 0 and entry["output"] > 0, entry["model"]


async def test_a_million_input_tokens_on_gpt_4o_cost_its_list_price():
    result = await TokenCost().run({"model": "gpt-4o", "input_tokens": 1_000_000}, CTX)
    assert result["total_cost_usd"] == 2.5
    assert (result["input_cost_usd"], result["output_cost_usd"]) == (2.5, 0.0)
    assert (result["usd_per_1m_input"], result["usd_per_1m_output"]) == (2.5, 10.0)
    assert result["prices_as_of"] == "2025-07-01"


async def test_input_output_and_requests_multiply_out():
    arguments = {
        "model": "claude-sonnet-4",
        "input_tokens": 2000,
        "output_tokens": 500,
        "requests": 1000,
    }
    result = await TokenCost().run(arguments, CTX)
    # 2M input at $3/M + 0.5M output at $15/M.
    assert (result["input_cost_usd"], result["output_cost_usd"]) == (6.0, 7.5)
    assert result["total_cost_usd"] == 13.5


async def test_tiny_workloads_keep_their_fractions_of_a_cent():
    result = await TokenCost().run({"model": "gpt-4o-mini", "input_tokens": 1}, CTX)
    assert result["total_cost_usd"] == 0.0  # 1.5e-7 rounds to millionths of a dollar.
    result = await TokenCost().run({"model": "gpt-4o-mini", "input_tokens": 1000}, CTX)
    assert result["total_cost_usd"] == 0.00015


async def test_models_are_found_by_alias_and_regardless_of_case():
    result = await TokenCost().run({"model": "Claude Sonnet 4", "output_tokens": 10**6}, CTX)
    assert (result["model"], result["total_cost_usd"]) == ("claude-sonnet-4", 15.0)


async def test_an_unknown_model_is_refused_with_the_list_of_known_models():
    with pytest.raises(ToolError) as caught:
        await TokenCost().run({"model": "gpt-9", "input_tokens": 1}, CTX)
    message = str(caught.value)
    assert "unknown model 'gpt-9'" in message
    assert all(name in message for name in load_price_table().names())


async def test_without_a_model_every_model_is_compared_cheapest_first():
    workload = {"input_tokens": 1_000_000, "output_tokens": 1_000_000}
    result = await TokenCost().run(workload, CTX)
    costs = {row["model"]: row["total_cost_usd"] for row in result["models"]}
    assert set(costs) == set(load_price_table().names())
    assert costs["gpt-4o"] == 12.5
    assert costs["claude-opus-4"] == 90.0
    totals = [row["total_cost_usd"] for row in result["models"]]
    assert totals == sorted(totals)
    assert result["models"][0]["model"] in ("gpt-4.1-nano", "gemini-2.0-flash")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"model": "gpt-4o", "input_tokens": -1}, "input_tokens must be between"),
        ({"model": "gpt-4o", "input_tokens": "many"}, "input_tokens must be a whole number"),
        ({"model": "gpt-4o", "input_tokens": True}, "input_tokens must be a whole number"),
        ({"model": "gpt-4o", "input_tokens": 1.5}, "input_tokens must be a whole number"),
        ({"model": "gpt-4o", "requests": 0}, "requests must be between"),
        ({"model": "gpt-4o", "output_tokens": 10**14}, "output_tokens must be between"),
        ({"model": 4}, "model must be a string"),
        ({"model": "gpt-4o", "currency": "EUR"}, "does not take currency"),
    ],
)
async def test_bad_arguments_are_refused_with_a_clear_message(arguments, message):
    with pytest.raises(ToolError, match=message):
        await TokenCost().run(arguments, CTX)


async def test_a_whole_float_token_count_is_accepted():
    result = await TokenCost().run({"model": "o3", "input_tokens": 1e6}, CTX)
    assert result["input_tokens"] == 1_000_000 and result["total_cost_usd"] == 2.0
