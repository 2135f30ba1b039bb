"""The price table shipped as data (``prices.json``): list prices per 1M tokens, dated.

Loaded and validated once; a malformed table is a packaging bug and fails loudly.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib import resources

MILLION = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class ModelPrice:
    model: str
    provider: str
    usd_per_1m_input: Decimal
    usd_per_1m_output: Decimal
    aliases: tuple[str, ...]

    def cost(self, input_tokens: int, output_tokens: int) -> tuple[Decimal, Decimal]:
        """USD for that many input and output tokens (exact, unrounded)."""
        return (
            self.usd_per_1m_input * input_tokens / MILLION,
            self.usd_per_1m_output * output_tokens / MILLION,
        )


@dataclass(frozen=True, slots=True)
class PriceTable:
    as_of: str
    note: str
    models: tuple[ModelPrice, ...]

    def names(self) -> tuple[str, ...]:
        return tuple(price.model for price in self.models)

    def resolve(self, name: str) -> ModelPrice | None:
        """The model a name or alias stands for, ignoring case and surrounding spaces."""
        wanted = _canonical(name)
        for price in self.models:
            if wanted == _canonical(price.model) or wanted in map(_canonical, price.aliases):
                return price
        return None

    def mentioned_in(self, text: str) -> tuple[str, ...]:
        """The models a text names, in order of first mention, each once."""
        found: list[str] = []
        for _, _, model in self.mentions(text):
            if model not in found:
                found.append(model)
        return tuple(found)

    def mentions(self, text: str) -> list[tuple[int, int, str]]:
        """Where a text names a model: (start, end, model), in order, never overlapping.

        The longest name wins where names overlap ("gpt-4o-mini" is not also "gpt-4o").
        """
        spans: list[tuple[int, int, str]] = []
        lowered = text.lower()
        for pattern, model in _name_patterns(self):
            for match in pattern.finditer(lowered):
                start, end = match.span()
                if all(end <= s or start >= e for s, e, _ in spans):
                    spans.append((start, end, model))
        return sorted(spans)

    def _names(self) -> list[tuple[str, str]]:
        return [
            (name.lower(), price.model)
            for price in self.models
            for name in (price.model, *price.aliases)
        ]


def _canonical(name: str) -> str:
    return " ".join(name.lower().split())


@cache
def load_price_table() -> PriceTable:
    raw = json.loads(resources.files("core.agent.tools").joinpath("prices.json").read_text("utf-8"))
    models = tuple(
        ModelPrice(
            model=entry["model"],
            provider=entry["provider"],
            usd_per_1m_input=Decimal(str(entry["input"])),
            usd_per_1m_output=Decimal(str(entry["output"])),
            aliases=tuple(entry.get("aliases", ())),
        )
        for entry in raw["models"]
    )
    return PriceTable(as_of=raw["as_of"], note=raw["note"], models=models)


@cache
def _name_patterns(table: PriceTable) -> tuple[tuple[re.Pattern[str], str], ...]:
    """Each name and alias as a compiled pattern, longest first (built once per table: the
    offline agent looks for model names in every message)."""
    names = sorted(table._names(), key=lambda pair: -len(pair[0]))  # noqa: SLF001 - same module
    return tuple(
        (re.compile(rf"(?<![\w.-]){re.escape(alias)}(?![\w-]|\.\d)"), model)
        for alias, model in names
    )
