"""schemathesis against the backend's REST OpenAPI (``/openapi.json``) on a live backend
process: generated requests for every operation, authenticated as an ordinary user; no
5xx, and every response conforms to the schema the backend publishes.

schemathesis' pytest loader (``from_fixture``) does not run under this pytest, so the test
drives its Python API: one hypothesis strategy per operation, each case called and checked.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from core.client import VigilClient
from tests.reliability.harness import alive, own_backend

pytestmark = pytest.mark.slow

EXAMPLES_PER_OPERATION = 60


@pytest.fixture(scope="module")
def rest_backend(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory):
    with own_backend(sqlite_template, tmp_path_factory.mktemp("rest")) as backend:
        yield backend


async def a_thread_with_events(rest_backend) -> str:
    async with VigilClient.connect(rest_backend.ws_url, rest_backend.token("schemathesis")) as c:
        result = await c.run("What is 2 + 2?")
    return str(result.accepted["thread_id"])


def test_the_rest_api_never_fails_and_conforms_to_its_schema(rest_backend):
    schema = schemathesis.openapi.from_url(f"{rest_backend.base_url}/openapi.json")
    headers = {"Authorization": f"Bearer {rest_backend.token('schemathesis')}"}
    thread_id = asyncio.run(a_thread_with_events(rest_backend))
    statuses: Counter[str] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 4
    strategies = []
    for operation in operations:
        strategies.append(operation.as_strategy(GenerationMode.POSITIVE))
        if len(operation.query) or len(operation.path_parameters) or len(operation.body):
            # Invalid inputs, where there are inputs to get wrong: they must be refused (4xx).
            strategies.append(operation.as_strategy(GenerationMode.NEGATIVE))
        if "{thread_id}" in operation.path:
            # Also the caller's real thread, so the 200 path is fuzzed too (query bounds).
            strategies.append(operation.as_strategy(path_parameters={"thread_id": thread_id}))

    for strategy in strategies:

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        @given(case=strategy)
        def call(case: schemathesis.Case) -> None:
            response = case.call_and_validate(base_url=rest_backend.base_url, headers=headers)
            statuses[f"{case.method} {case.path} {response.status_code}"] += 1

        call()
    assert alive(rest_backend)
    assert any(key.startswith("GET /api/threads/{thread_id}/events 200") for key in statuses)
    print(f"\nschemathesis: {sum(statuses.values())} requests, {dict(statuses)}")


def test_an_after_seq_beyond_any_database_integer_is_422_not_500(rest_backend):
    """Found by the test above: 2**70 reached SQLite and came back as a 500."""
    import httpx

    thread_id = asyncio.run(a_thread_with_events(rest_backend))
    headers = {"Authorization": f"Bearer {rest_backend.token('schemathesis')}"}
    url = f"{rest_backend.base_url}/api/threads/{thread_id}/events"
    assert httpx.get(url, params={"after_seq": 2**70}, headers=headers).status_code == 422
    last = httpx.get(url, params={"after_seq": 2**63 - 1}, headers=headers)
    assert (last.status_code, last.json()["events"]) == (200, [])
