"""A stack shared by the end-to-end tests that do not break it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.infra import Infra
from tests.support.stack import Stack, started_stack

# Every request of these tests comes from 127.0.0.1; rate limits have their own test.
UNLIMITED = {
    "QUNMA_RATE_LIMIT_PER_IP": "0",
    "QUNMA_RATE_LIMIT_PER_USER": "0",
    "QUNMA_RATE_LIMIT_PER_KEY": "0",
    "QUNMA_RATE_LIMIT_PER_TENANT": "0",
}


@pytest.fixture(scope="module")
async def stack(infra: Infra) -> AsyncIterator[Stack]:
    async with started_stack(infra, extra_env=UNLIMITED) as started:
        yield started
