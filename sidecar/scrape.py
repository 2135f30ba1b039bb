"""Reading metrics: the backend's /metrics over HTTP, and the sidecar's own registry.

Both come out as flat ``Sample`` lists (sample name, labels, value), the shape the SLO tracker
selects from. Every failure to read or parse the backend is a ``ScrapeError``.
"""

from __future__ import annotations

from collections.abc import Iterable

import httpx
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from sidecar import SidecarError
from sidecar.slo.tracker import Sample

# Ask for the classic text format: the parser below reads it, and it carries no exemplars.
ACCEPT = "text/plain; version=0.0.4"


class ScrapeError(SidecarError):
    """The backend's metrics could not be read or parsed."""


async def scrape(client: httpx.AsyncClient, url: str, timeout: float) -> list[Sample]:
    try:
        response = await client.get(url, headers={"Accept": ACCEPT}, timeout=timeout)
    except httpx.TimeoutException as exc:
        raise ScrapeError(f"{url}: no answer within {timeout} s") from exc
    except httpx.HTTPError as exc:
        raise ScrapeError(f"{url}: {type(exc).__name__} ({exc})") from exc
    if response.status_code != 200:
        raise ScrapeError(f"{url}: HTTP {response.status_code}")
    return parse(response.text, url)


def parse(text: str, origin: str = "<text>") -> list[Sample]:
    try:
        return flatten(text_string_to_metric_families(text))
    except ValueError as exc:
        raise ScrapeError(f"{origin}: unreadable exposition ({exc})") from exc


def flatten(families: Iterable[Metric]) -> list[Sample]:
    return [
        Sample(sample.name, dict(sample.labels), float(sample.value))
        for family in families
        for sample in family.samples
    ]


def registry_samples(registry: CollectorRegistry) -> list[Sample]:
    return flatten(registry.collect())


def value_of(samples: Iterable[Sample], name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels``."""
    return sum(
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )
