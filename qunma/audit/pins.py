"""Log keys pinned from JWKS documents (URLs or files), for verify and prove."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import aiohttp

from shared.audit.keys import Pins, merge, pins_from_jwks


async def fetch_pins(urls: Iterable[str], timeout: float = 5.0) -> tuple[Pins, list[str]]:
    """Pins from JWKS URLs or files; also the sources that could not be read, and why."""
    pins: Pins = {}
    failed: list[str] = []
    async with aiohttp.ClientSession() as session:
        for url in urls:
            try:
                if url.startswith(("http://", "https://")):
                    async with session.get(
                        url, timeout=aiohttp.ClientTimeout(total=timeout)
                    ) as resp:
                        resp.raise_for_status()
                        document = await resp.json(content_type=None)
                else:
                    # A small local file; reading it blocks for microseconds.
                    document = json.loads(Path(url).read_text())  # noqa: ASYNC240
            except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
                failed.append(f"{url}: {exc or type(exc).__name__}")
                continue
            merge(pins, pins_from_jwks(document))
    return pins, failed
