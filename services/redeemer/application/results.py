"""What the application answers, for the API and the landing page to present."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from shared.rows import Row


@dataclass(frozen=True)
class Group:
    group_id: uuid.UUID
    name: str
    members: int
    max_members: int

    @classmethod
    def of(cls, row: Row | None) -> Group:
        assert row is not None  # a code's group is projected before the code
        return cls(row["group_id"], row["name"], row["members"], row["max_members"])


@dataclass(frozen=True)
class Membership:
    group_id: uuid.UUID
    user_id: str
    joined_at: datetime


@dataclass(frozen=True)
class Joined:
    membership: Membership
    created: bool  # False when the person already was a member


@dataclass(frozen=True, kw_only=True)
class Scanned:
    """A scan that was not refused: a join token, a membership found, or a request waiting."""

    outcome: Literal["token", "member", "pending"]
    tenant_id: uuid.UUID
    group: Group
    join_token: str | None = None
    expires_at: datetime | None = None
    membership: Membership | None = None
    join_request_id: uuid.UUID | None = None
