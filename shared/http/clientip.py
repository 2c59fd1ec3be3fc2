"""The client's IP address: the connection's peer, unless a trusted proxy forwarded it.

`X-Forwarded-For` is read right to left, skipping addresses of trusted proxies; the first
one that is not trusted is the client. Without a trusted peer the header is ignored, so a
caller cannot choose its own address. Every `X-Forwarded-For` line counts, in order: a
proxy that appends its own line after the one a client sent is read first, so a client
cannot put an address of its choosing in front of it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from aiohttp import web

from shared.rules.subjects import IPAddress, Network

__all__ = [
    "IPAddress",
    "Network",
    "client_address",
    "client_ip",
    "from_trusted_proxy",
    "parse_networks",
]


def parse_networks(text: str) -> list[Network]:
    return [
        ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip()
    ]


def _address(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.strip().strip("[]").split("%")[0])
    except ValueError:
        return None


def from_trusted_proxy(request: web.Request, trusted: Sequence[Network]) -> bool:
    """Whether the connection comes from a proxy whose forwarded headers we believe."""
    peer = _address(request.remote or "")
    return peer is not None and any(peer in net for net in trusted)


def client_ip(request: web.Request, trusted: Sequence[Network]) -> IPAddress | None:
    return client_address(request, trusted)[0]


def client_address(
    request: web.Request, trusted: Sequence[Network]
) -> tuple[IPAddress | None, bool]:
    """The client's address, and whether a trusted proxy forwarded it (then it is the
    person's own, not the address of the backend that called)."""
    peer = _address(request.remote or "")
    if peer is None or not any(peer in net for net in trusted):
        return peer, False
    lines = request.headers.getall("X-Forwarded-For", [])
    hops = [h for line in lines for h in line.split(",") if h.strip()]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            return peer, False
        if not any(address in net for net in trusted):
            return address, True
    return peer, False
