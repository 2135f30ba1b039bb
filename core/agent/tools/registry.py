"""The tools a run may call, by name."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from core.agent.model import ToolSpec
from core.agent.tools.base import Tool
from core.agent.tools.calculator import Calculator
from core.agent.tools.token_cost import TokenCost
from core.agent.tools.usage_report import UsageReport


class ToolRegistry:
    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            self.register(tool)

    def register(self, tool: Tool) -> None:
        """Add a tool; a second tool with the same name is refused (``ValueError``)."""
        name = tool.spec.name
        if name in self._tools:
            raise ValueError(f"a tool named {name!r} is already registered")
        self._tools[name] = tool

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def specs(self) -> tuple[ToolSpec, ...]:
        return tuple(tool.spec for tool in self._tools.values())

    def names(self) -> tuple[str, ...]:
        return tuple(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)


def default_registry() -> ToolRegistry:
    """A fresh registry with the built-in tools: calculator, token_cost, usage_report."""
    return ToolRegistry([Calculator(), TokenCost(), UsageReport()])
