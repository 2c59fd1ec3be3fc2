"""Who a limit counts against: a person, by a keyed index of their user id (never the id
itself, so erasing the index erases the link), and a client address, by what one
subscriber is given (one IPv4 address, or an IPv6 /64). Rate limits (shared/http/ratelimit.py)
and the wrong-answer lockout (services/redeemer/application/lockout.py) both count by these.
"""

from __future__ import annotations

import ipaddress
import uuid
from typing import Protocol

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Index(Protocol):
    """A keyed index of user ids (shared/crypto/user_index.py)."""

    def text(self, tenant_id: uuid.UUID | None, user_id: str) -> str: ...


def person_key(users: Index, tenant_id: uuid.UUID | None, user_id: str) -> str:
    return f"user:{users.text(tenant_id, user_id)}"


def address_key(ip: IPAddress) -> str:
    """One subject per IPv4 address, or per IPv6 /64."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)
