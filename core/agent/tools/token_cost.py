"""What a workload costs on a model, or on every model in the price table.

Figures come from ``prices.json`` (list prices as of its ``as_of`` date) and are computed
exactly in decimal, then rounded to millionths of a dollar for the result.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from core.agent.model import ToolSpec
from core.agent.tools.base import (
    ToolContext,
    ToolError,
    int_argument,
    object_schema,
    reject_unknown,
    str_argument,
)
from core.agent.tools.prices import ModelPrice, PriceTable, load_price_table

MAX_TOKENS = 10**13
MAX_REQUESTS = 10**9


def _usd(amount: Decimal) -> float:
    return float(amount.quantize(Decimal("0.000001")))


class TokenCost:
    def __init__(self, table: PriceTable | None = None) -> None:
        self._table = table or load_price_table()
        models = ", ".join(self._table.names())
        self.spec = ToolSpec(
            name="token_cost",
            description=(
                "Cost in USD of a workload (input and output tokens, times a number of "
                f"requests) at list prices as of {self._table.as_of}. Name a model to price "
                "it alone, or leave the model out to compare every known model. "
                f"Known models: {models}."
            ),
            parameters=object_schema(
                {
                    "model": {"type": "string", "description": "e.g. gpt-4o; omit to compare"},
                    "input_tokens": {"type": "integer", "minimum": 0, "default": 0},
                    "output_tokens": {"type": "integer", "minimum": 0, "default": 0},
                    "requests": {"type": "integer", "minimum": 1, "default": 1},
                }
            ),
        )

    async def run(self, arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
        reject_unknown(arguments, self.spec)
        name = str_argument(arguments, "model", required=False)
        input_tokens = int_argument(
            arguments, "input_tokens", default=0, minimum=0, maximum=MAX_TOKENS
        )
        output_tokens = int_argument(
            arguments, "output_tokens", default=0, minimum=0, maximum=MAX_TOKENS
        )
        requests = int_argument(arguments, "requests", default=1, minimum=1, maximum=MAX_REQUESTS)
        workload = {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "requests": requests,
            "prices_as_of": self._table.as_of,
            "note": self._table.note,
        }
        if name is None or not name.strip():
            costs = [
                self._cost(price, input_tokens, output_tokens, requests)
                for price in self._table.models
            ]
            costs.sort(key=lambda cost: (cost["total_cost_usd"], cost["model"]))
            return {**workload, "models": costs}
        price = self._table.resolve(name)
        if price is None:
            known = ", ".join(self._table.names())
            raise ToolError(f"unknown model {name!r}; known models: {known}")
        return {**workload, **self._cost(price, input_tokens, output_tokens, requests)}

    @staticmethod
    def _cost(
        price: ModelPrice, input_tokens: int, output_tokens: int, requests: int
    ) -> dict[str, Any]:
        input_cost, output_cost = price.cost(input_tokens * requests, output_tokens * requests)
        return {
            "model": price.model,
            "provider": price.provider,
            "usd_per_1m_input": float(price.usd_per_1m_input),
            "usd_per_1m_output": float(price.usd_per_1m_output),
            "input_cost_usd": _usd(input_cost),
            "output_cost_usd": _usd(output_cost),
            "total_cost_usd": _usd(input_cost + output_cost),
        }
