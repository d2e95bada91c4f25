"""Fixtures of the library tests."""

import uuid
from collections.abc import Iterator

import pytest
import redis

from memcube import working


@pytest.fixture()
def tenant(redis_client: redis.Redis) -> Iterator[str]:
    """A fresh tenant; its working-memory keys are removed from Redis afterwards."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    yield name
    for key in redis_client.scan_iter(working.tenant_pattern(name)):
        redis_client.delete(key)
