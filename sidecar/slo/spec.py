"""The SLO file: load, validate, and turn good/total selectors into matchers.

A file looks like ``default_slos.yaml`` beside this module (the defaults of ARCHITECTURE.md)::

    slos:
      - name: event-delivery
        objective: 0.999
        window: 28d
        good: ['vigil_event_ack_latency_seconds_bucket{le="2.0"}']
        total: ['vigil_events_emitted_total']

``good`` and ``total`` are lists of PromQL-style instant selectors (``=``, ``!=``, ``=~``,
``!~``; regexes are fully anchored as in Prometheus); each side is the sum of every series
its selectors match. ``source`` says whose metrics they read: ``backend`` (scraped) or
``sidecar`` (the sidecar's own registry, e.g. the canary). Any error is a ``SpecError`` naming
the file, the SLO and the field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from sidecar import SidecarError

DEFAULT_SLO_FILE = Path(__file__).with_name("default_slos.yaml")
SOURCES = ("backend", "sidecar")
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_DURATION = re.compile(r"^(\d+)(s|m|h|d|w)$")
_DURATION_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SELECTOR = re.compile(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{(.*)\})?\s*$", re.S)
_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')
# Label values that are numbers in the exposition, compared numerically ("2" matches "2.0").
_NUMERIC_LABELS = frozenset({"le", "quantile"})


class SpecError(SidecarError, ValueError):
    """The SLO file is invalid."""


class SelectorError(SpecError):
    """A metric selector does not parse."""


@dataclass(frozen=True)
class Matcher:
    label: str
    op: Literal["=", "!=", "=~", "!~"]
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.label, "")
        if self.op in ("=~", "!~"):
            found = re.fullmatch(self.value, actual) is not None
            return found if self.op == "=~" else not found
        equal = _same_value(self.label, actual, self.value)
        return equal if self.op == "=" else not equal


@dataclass(frozen=True)
class Selector:
    metric: str
    matchers: tuple[Matcher, ...]
    text: str

    def matches(self, name: str, labels: Mapping[str, str]) -> bool:
        return name == self.metric and all(m.matches(labels) for m in self.matchers)


@dataclass(frozen=True)
class SLOSpec:
    name: str
    objective: float
    window_s: float
    window: str
    good: tuple[Selector, ...]
    total: tuple[Selector, ...]
    source: Literal["backend", "sidecar"] = "backend"
    description: str = ""


@dataclass(frozen=True)
class SLOConfig:
    slos: tuple[SLOSpec, ...]
    origin: str

    @property
    def longest_window_s(self) -> float:
        return max((slo.window_s for slo in self.slos), default=0.0)


def parse_duration(text: str) -> float:
    match = _DURATION.match(str(text).strip())
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a duration like 5m, 6h or 28d")
    return float(int(match.group(1)) * _DURATION_S[match.group(2)])


def parse_selector(text: str) -> Selector:
    match = _SELECTOR.match(text)
    if not match:
        raise SelectorError(f'{text!r} is not a selector like name{{label="value"}}')
    metric, body = match.group(1), (match.group(2) or "").strip()
    matchers: list[Matcher] = []
    position = 0
    while position < len(body):
        part = _MATCHER.match(body, position)
        if not part:
            raise SelectorError(f"{text!r}: cannot read a label matcher at {body[position:]!r}")
        label, op, raw = part.group(1), part.group(2), part.group(3)
        value = raw.replace('\\"', '"').replace("\\\\", "\\")
        if op in ("=~", "!~"):
            try:
                re.compile(value)
            except re.error as exc:
                raise SelectorError(f"{text!r}: bad regex {value!r} ({exc})") from exc
        matchers.append(Matcher(label, op, value))  # type: ignore[arg-type]
        position = part.end()
    return Selector(metric, tuple(matchers), text.strip())


def load_slos(path: Path | None = None) -> SLOConfig:
    """Read an SLO file (the shipped defaults when ``path`` is None)."""
    source = path or DEFAULT_SLO_FILE
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"{source}: cannot read the SLO file ({exc.strerror})") from exc
    return parse_slos(text, str(source))


def parse_slos(text: str, origin: str = "<string>") -> SLOConfig:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{origin}: not valid YAML ({exc})") from exc
    if not isinstance(document, dict) or not isinstance(document.get("slos"), list):
        raise SpecError(f"{origin}: expected a mapping with a list under 'slos'")
    slos = tuple(_parse_slo(item, origin, index) for index, item in enumerate(document["slos"]))
    if not slos:
        raise SpecError(f"{origin}: 'slos' is empty")
    names = [slo.name for slo in slos]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise SpecError(f"{origin}: SLO names must be unique (repeated: {', '.join(duplicates)})")
    return SLOConfig(slos, origin)


def _parse_slo(item: Any, origin: str, index: int) -> SLOSpec:
    where = f"{origin}: slos[{index}]"
    if not isinstance(item, dict):
        raise SpecError(f"{where}: expected a mapping")
    unknown = set(item) - {"name", "objective", "window", "good", "total", "source", "description"}
    if unknown:
        raise SpecError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    name = item.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise SpecError(f"{where}.name: use lower-case letters, digits and '-' (got {name!r})")
    where = f"{origin}: SLO {name!r}"
    objective = item.get("objective")
    if (
        isinstance(objective, bool)
        or not isinstance(objective, int | float)
        or not math.isfinite(objective)
        or not 0 < objective < 1
    ):
        raise SpecError(f"{where}.objective: a ratio strictly between 0 and 1 (got {objective!r})")
    window = str(item.get("window", "28d"))
    try:
        window_s = parse_duration(window)
    except ValueError as exc:
        raise SpecError(f"{where}.window: {exc}") from exc
    source = item.get("source", "backend")
    if source not in SOURCES:
        raise SpecError(f"{where}.source: one of {', '.join(SOURCES)} (got {source!r})")
    description = item.get("description", "")
    return SLOSpec(
        name=name,
        objective=float(objective),
        window_s=window_s,
        window=window,
        good=_selectors(item.get("good"), f"{where}.good"),
        total=_selectors(item.get("total"), f"{where}.total"),
        source=source,
        description=str(description),
    )


def _selectors(value: Any, where: str) -> tuple[Selector, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(s, str) for s in items):
        raise SpecError(f"{where}: a selector or a non-empty list of selectors")
    try:
        return tuple(parse_selector(text) for text in items)
    except SelectorError as exc:
        raise SelectorError(f"{where}: {exc}") from exc


def _same_value(label: str, actual: str, wanted: str) -> bool:
    if actual == wanted:
        return True
    if label in _NUMERIC_LABELS:
        try:
            return float(actual) == float(wanted)
        except ValueError:
            return False
    return False
