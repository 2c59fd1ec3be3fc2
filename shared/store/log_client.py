"""The producing service's own copy of its log (`GET /v1/log`, authenticated) and its log
keys (`/.well-known/jwks.json`): what a follower fills gaps from and checks signatures by.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
import msgspec

from shared.chain import ChainBroken
from shared.events.envelope import decode_envelope
from shared.store.origin import Item, item_of


class LogEntry(msgspec.Struct):
    position: int
    hash: str
    event: msgspec.Raw


class LogHead(msgspec.Struct):
    position: int


class LogPage(msgspec.Struct):
    log: str
    partition: int
    head: LogHead
    events: list[LogEntry]


class JwkIn(msgspec.Struct):
    kid: str
    x: str
    kty: str = ""
    crv: str = ""
    log: str | None = None


class JwksIn(msgspec.Struct):
    keys: list[JwkIn]


@dataclass(frozen=True)
class Page:
    items: list[Item]
    head: int  # how far the producer has sealed this partition


class LogClient:
    """Reads the producing service's sealed events (`GET /v1/log`) and its log keys."""

    def __init__(self, base_url: str, token: str, session: aiohttp.ClientSession) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.session = session

    async def page(self, partition: int, after: int, limit: int = 500) -> Page:
        async with self.session.get(
            f"{self.base_url}/v1/log",
            params={"partition": partition, "after": after, "limit": limit},
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=aiohttp.ClientTimeout(total=15),
        ) as resp:
            resp.raise_for_status()
            page = msgspec.json.decode(await resp.read(), type=LogPage)
        items = []
        for entry in page.events:
            body = bytes(entry.event)
            try:
                envelope = decode_envelope(body)
            except msgspec.DecodeError as exc:
                raise ChainBroken(
                    page.log,
                    partition,
                    entry.position,
                    "the log API served bytes that do not decode",
                ) from exc
            item = item_of(envelope, body, None, {})
            if item.digest.hex() != entry.hash or envelope.position != entry.position:
                raise ChainBroken(
                    page.log,
                    partition,
                    entry.position,
                    "the log API's hash does not match its bytes",
                )
            items.append(item)
        return Page(items, page.head.position)

    async def log_keys(self, log_name: str) -> dict[str, str]:
        """The producer's public keys for `log_name`, from its /.well-known/jwks.json."""
        async with self.session.get(
            f"{self.base_url}/.well-known/jwks.json", timeout=aiohttp.ClientTimeout(total=15)
        ) as resp:
            resp.raise_for_status()
            jwks = msgspec.json.decode(await resp.read(), type=JwksIn)
        return {
            k.kid: k.x
            for k in jwks.keys
            if k.log == log_name and k.kty == "OKP" and k.crv == "Ed25519"
        }
