"""A stack shared by the end-to-end tests that do not break it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.infra import Infra
from tests.support.stack import Stack, started_stack


@pytest.fixture(scope="module")
async def stack(infra: Infra) -> AsyncIterator[Stack]:
    async with started_stack(infra) as started:
        yield started
