"""The audit report as a document (`qunma audit report --json`; shared/audit/report.py builds
it, shared/audit/report_render.py draws it)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec


class Action(msgspec.Struct):
    at: datetime
    action: str  # issued, amended, revoked, superseded, live code configured, live code revoked
    subject: str  # the code's or live code's id
    group_id: uuid.UUID | None
    by: str | None  # the event's actor
    detail: str


class CodeSummary(msgspec.Struct):
    code_id: uuid.UUID
    group_id: uuid.UUID
    group_name: str | None
    channel: str | None
    issued_at: datetime
    issued_by: str | None
    status: str  # as of the report's instant
    ended_at: datetime | None
    ended_by: str | None
    reason: str | None
    scans: dict[str, int]  # accepted, member, requested, and each rejection reason
    joins: int


class JoinRow(msgspec.Struct):
    group_id: uuid.UUID
    group_name: str | None
    person: str
    user: str
    code_id: uuid.UUID | None
    live_code_id: uuid.UUID | None
    channel: str | None
    verification: str
    joined_at: datetime
    left_at: datetime | None
    by: str | None


class ChannelJoins(msgspec.Struct):
    code_id: uuid.UUID | None
    channel: str | None
    joins: int


class Bucket(msgspec.Struct):
    start: datetime
    scans: int
    joins: int
    rejected: int


class ValidAt(msgspec.Struct):
    instant: datetime
    codes: list[uuid.UUID]


class ReportDoc(msgspec.Struct):
    as_of: datetime
    filters: dict[str, str]
    keys: str  # "readable", "unavailable"
    history: list[Action]
    codes: list[CodeSummary]
    scans_by_reason: dict[str, int]
    joins_by_code_and_channel: list[ChannelJoins]
    valid_at: ValidAt
    joins: list[JoinRow]
    timeline_unit: str  # "hour" or "day"
    timeline: list[Bucket]
    people_erased: int
    retention: list[dict[str, Any]]
