"""What integrators ask the issuer to do (imperative names; events answer in the past tense)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class CreateTenant:
    name: str
    key_name: str = "default"
    scopes: tuple[str, ...] = ("issue", "redeem", "audit", "admin")


@dataclass(frozen=True)
class CreateGroup:
    tenant_id: uuid.UUID
    name: str
    max_members: int


@dataclass(frozen=True)
class IssueCode:
    tenant_id: uuid.UUID
    group_id: uuid.UUID
    ttl_seconds: int
    max_scans: int | None


@dataclass(frozen=True)
class RevokeCode:
    tenant_id: uuid.UUID
    code_id: uuid.UUID
    reason: str
