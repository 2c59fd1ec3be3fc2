"""Session-wide real servers. Every test that needs one gets a fresh database and topics."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.infra import Infra, start_infra


@pytest.fixture(scope="session")
async def infra() -> AsyncIterator[Infra]:
    root = Path(tempfile.mkdtemp(prefix="qunma-tests-"))
    found = await start_infra(root)
    try:
        yield found
    finally:
        await found.broker.stop()
        await found.postgres.stop()
