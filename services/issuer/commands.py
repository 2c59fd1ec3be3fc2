"""What integrators ask the issuer to do (imperative names; events answer in the past tense).

Commands that carry many options hold them as one input (inputs.py): validated field by
field as they were decoded, and the request body of the same name; the handler checks what
depends on the group.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from services.issuer.inputs import (
    CreateLiveCodeIn,
    IssueCodeIn,
    PatchCodeIn,
    PatchLiveCodeIn,
)
from shared.events.issuer import KeyRate


@dataclass(frozen=True)
class CreateTenant:
    name: str
    key_name: str = "default"
    scopes: tuple[str, ...] = ("issue", "redeem", "audit", "admin")


@dataclass(frozen=True)
class CreateApiKey:
    tenant_id: uuid.UUID
    name: str
    scopes: tuple[str, ...]
    rate_limit: KeyRate | None = None


@dataclass(frozen=True)
class ChangeTenantSettings:
    tenant_id: uuid.UUID
    fallback_domains: tuple[str, ...] | None


@dataclass(frozen=True)
class RevokeApiKey:
    tenant_id: uuid.UUID
    key_id: uuid.UUID


@dataclass(frozen=True)
class RotateSigningKey:
    tenant_id: uuid.UUID


@dataclass(frozen=True)
class CreateGroup:
    tenant_id: uuid.UUID
    name: str
    profile: str
    max_members: int | None
    timezone: str


@dataclass(frozen=True)
class IssueCode:
    tenant_id: uuid.UUID
    group_id: uuid.UUID
    options: IssueCodeIn


@dataclass(frozen=True)
class AmendCode:
    tenant_id: uuid.UUID
    code_id: uuid.UUID
    changes: PatchCodeIn


@dataclass(frozen=True)
class RevokeCode:
    tenant_id: uuid.UUID
    code_id: uuid.UUID
    reason: str


@dataclass(frozen=True)
class CreateLiveCode:
    tenant_id: uuid.UUID
    spec: CreateLiveCodeIn


@dataclass(frozen=True)
class ChangeLiveCode:
    tenant_id: uuid.UUID
    live_code_id: uuid.UUID
    changes: PatchLiveCodeIn


@dataclass(frozen=True)
class RevokeLiveCode:
    tenant_id: uuid.UUID
    live_code_id: uuid.UUID
    reason: str
