"""Is this code live? One order of checks, for both services and both languages.

An owner's act speaks first (revoked, then superseded by a newer code of the group), then
time (expired, then not yet valid). The issuer lists codes by it, the redeemer refuses a
scan by it (`code_revoked`, `code_superseded`, `code_expired`, `code_not_active`); the SQL
function `qunma_code_status` (shared/store/functions/code_status.sql) says the same, and a
test compares the two on every combination.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from shared.refusals import Reason, Refusal

Status = Literal["revoked", "superseded", "expired", "scheduled", "active"]

REFUSAL: dict[Status, Reason] = {
    "revoked": Reason.CODE_REVOKED,
    "superseded": Reason.CODE_SUPERSEDED,
    "expired": Reason.CODE_EXPIRED,
    "scheduled": Reason.CODE_NOT_ACTIVE,
}
DETAIL: dict[Status, str] = {
    "revoked": "this code was revoked by the group's owner",
    "superseded": "a newer code of this group replaced this one",
    "expired": "this code has expired; ask for a new one",
    "scheduled": "this code is not valid yet",
}


def status(
    *,
    revoked: bool,
    superseded: bool,
    not_before: datetime | None,
    expires_at: datetime | None,
    now: datetime,
) -> Status:
    if revoked:
        return "revoked"
    if superseded:
        return "superseded"
    if expires_at is not None and expires_at <= now:
        return "expired"
    if not_before is not None and not_before > now:
        return "scheduled"
    return "active"


def refusal(found: Status, not_before: datetime | None, now: datetime) -> Refusal:
    """The answer to a scan of a code that is not live: a scheduled code says when it opens
    (`active_from`, and Retry-After until then)."""
    assert found != "active"
    if found == "scheduled" and not_before is not None:
        return Refusal(
            REFUSAL[found],
            DETAIL[found],
            retry_after=int((not_before - now).total_seconds()) + 1,
            active_from=not_before.isoformat(),
        )
    return Refusal(REFUSAL[found], DETAIL[found])
