from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fixtures.redis import delete_prefix, redis_test_url, unique_prefix


@pytest.fixture
def redis_url() -> str:
    return redis_test_url()


@pytest.fixture
async def redis_prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix of this test's own, removed afterwards."""
    prefix = unique_prefix()
    yield prefix
    await delete_prefix(redis_url, prefix)
