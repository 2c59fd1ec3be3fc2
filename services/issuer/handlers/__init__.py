"""Command handlers, one per command, registered in one dict."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from services.issuer.commands import (
    AmendCode,
    ChangeLiveCode,
    ChangeTenantSettings,
    CreateApiKey,
    CreateGroup,
    CreateLiveCode,
    CreateTenant,
    IssueCode,
    RevokeApiKey,
    RevokeCode,
    RevokeLiveCode,
    RotateSigningKey,
)
from services.issuer.handlers.codes import amend_code, issue_code, revoke_code
from services.issuer.handlers.deps import Deps
from services.issuer.handlers.groups import create_group
from services.issuer.handlers.live_codes import change_live_code, create_live_code, revoke_live_code
from services.issuer.handlers.tenants import (
    CreatedKey,
    change_tenant_settings,
    create_api_key,
    create_tenant,
    revoke_api_key,
    rotate_signing_key,
)

Handler = Callable[[Any, Deps], Awaitable[Any]]

HANDLERS: dict[type, Handler] = {
    CreateTenant: create_tenant,
    CreateApiKey: create_api_key,
    ChangeTenantSettings: change_tenant_settings,
    RevokeApiKey: revoke_api_key,
    RotateSigningKey: rotate_signing_key,
    CreateGroup: create_group,
    IssueCode: issue_code,
    AmendCode: amend_code,
    RevokeCode: revoke_code,
    CreateLiveCode: create_live_code,
    ChangeLiveCode: change_live_code,
    RevokeLiveCode: revoke_live_code,
}

__all__ = ["HANDLERS", "CreatedKey", "Deps"]
