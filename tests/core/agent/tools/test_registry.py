from typing import Any

import pytest

from core.agent.model import ToolSpec
from core.agent.tools.base import ToolContext
from core.agent.tools.calculator import Calculator
from core.agent.tools.registry import ToolRegistry, default_registry


class Echo:
    spec = ToolSpec("echo", "Echo the arguments.", {"type": "object"})

    async def run(self, arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
        return arguments


def test_the_default_registry_holds_the_three_built_in_tools():
    registry = default_registry()
    assert registry.names() == ("calculator", "token_cost", "usage_report")
    assert [spec.name for spec in registry.specs()] == list(registry.names())
    for spec in registry.specs():
        assert spec.description
        assert spec.parameters["type"] == "object"


def test_each_default_registry_is_a_fresh_one():
    first, second = default_registry(), default_registry()
    first.register(Echo())
    assert "echo" in first and "echo" not in second


def test_a_second_tool_with_the_same_name_is_refused():
    registry = ToolRegistry([Calculator()])
    with pytest.raises(ValueError, match="already registered"):
        registry.register(Calculator())
    assert len(registry) == 1


def test_an_unknown_name_finds_nothing():
    registry = ToolRegistry([Echo()])
    assert registry.get("calculator") is None
    assert isinstance(registry.get("echo"), Echo)
    assert ToolRegistry().names() == ()
