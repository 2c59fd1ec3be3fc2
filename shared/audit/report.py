"""`qunma audit report`: what happened to every code and every join, read from the logs.

Built from both logs alone (never a service's database): who issued, amended, rotated and
revoked which code and why (each event's `actor` is the API key, or the part of the
service, that caused it), scans by outcome and reason, joins by code and channel, which
codes were valid at an instant, who joined which group through which code, and the scans
and joins over time. `--as-of` reads the logs as they stood at that instant.

Personal values are shown when the redeemer's person keys can be read (its database and
KEK, as an operator has them): `[erased]` once a person's key is gone (erasure or
retention), `[sealed]` without access to the keys.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.audit.report_doc import (
    Action,
    Bucket,
    ChannelJoins,
    CodeSummary,
    JoinRow,
    ReportDoc,
    ValidAt,
)
from shared.events import Envelope, Event
from shared.events.issuer import (
    CodeAmended,
    CodeIssued,
    CodeRevoked,
    CodeSuperseded,
    GroupCreated,
    LiveCodeConfigured,
    LiveCodeRevoked,
)
from shared.events.personal import Sealed
from shared.events.redeemer import (
    JoinRequested,
    MemberJoined,
    MemberLeft,
    PersonalDataExpired,
    PersonForgotten,
    ScanAccepted,
    ScanFoundMember,
    ScanRejected,
)
from shared.rules import code_status

ERASED, SEALED = "[erased]", "[sealed]"
Reveal = Callable[[Sealed, str], str | None]


@dataclass(frozen=True)
class Filters:
    tenant: uuid.UUID | None = None
    group: uuid.UUID | None = None
    code: uuid.UUID | None = None
    as_of: datetime | None = None


@dataclass
class _Code:
    code_id: uuid.UUID
    group_id: uuid.UUID
    issued_at: datetime
    issued_by: str | None
    expires_at: datetime | None
    not_before: datetime | None
    channel: list[tuple[datetime, str | None]]  # the channel over time
    expiry: list[tuple[datetime, datetime | None]]  # the expiry over time
    ended: tuple[str, datetime, str | None, str | None] | None = None  # status, at, by, why

    def channel_at(self, at: datetime) -> str | None:
        return max((c for c in self.channel if c[0] <= at), key=lambda c: c[0])[1]

    def expiry_at(self, at: datetime) -> datetime | None:
        return max((e for e in self.expiry if e[0] <= at), key=lambda e: e[0])[1]

    def status_at(self, at: datetime) -> str:
        ended = self.ended[0] if self.ended is not None and self.ended[1] <= at else None
        found = code_status.status(
            revoked=ended == "revoked",
            superseded=ended == "superseded",
            not_before=self.not_before,
            expires_at=self.expiry_at(at),
            now=at,
        )
        return "not yet active" if found == "scheduled" else found


class ReportBuilder:
    """Takes the events of both logs in any order across partitions (each partition in
    order) and keeps what the report needs; `result()` orders everything by time."""

    def __init__(self, filters: Filters, reveal: Reveal | None) -> None:
        self.filters = filters
        self.reveal = reveal
        self.as_of = filters.as_of or datetime.now(UTC)
        self.groups: dict[uuid.UUID, tuple[str, uuid.UUID | None]] = {}
        self.codes: dict[uuid.UUID, _Code] = {}
        self.history: list[Action] = []
        self.reasons: Counter[str] = Counter()
        self.joins: dict[tuple[uuid.UUID, str], list[JoinRow]] = defaultdict(list)
        self.left: dict[tuple[uuid.UUID, str], list[datetime]] = defaultdict(list)
        self.scan_times: list[tuple[datetime, str]] = []  # (at, "scan" | "join" | "rejected")
        self.erased = 0
        self.retention: list[dict[str, Any]] = []
        # Per code, kept apart from the codes: the redeemer's log may be read before the
        # issuer's, so a code's scans can come before the code.
        self.code_scans: dict[uuid.UUID, Counter[str]] = defaultdict(Counter)
        self.code_joins: Counter[uuid.UUID] = Counter()

    # -- filtering ---------------------------------------------------------------------

    def _wanted(self, env: Envelope, group: uuid.UUID | None, code: uuid.UUID | None) -> bool:
        f = self.filters
        if env.occurred_at > self.as_of:
            return False
        if f.tenant is not None and env.tenant_id != f.tenant:
            return False
        if f.group is not None and group != f.group:
            return False
        return f.code is None or code == f.code

    def _user(self, user: Sealed) -> str:
        if self.reveal is None:
            return user.c if user.k == "" else SEALED
        return self.reveal(user, "user") or ERASED

    # -- events ------------------------------------------------------------------------

    def add(self, env: Envelope, event: Event) -> None:
        if isinstance(event, GroupCreated):
            self.groups[event.group_id] = (event.name, env.tenant_id)
        elif isinstance(event, CodeIssued):
            if self._wanted(env, event.group_id, event.code_id):
                self.codes[event.code_id] = _Code(
                    event.code_id,
                    event.group_id,
                    env.occurred_at,
                    env.actor,
                    event.expires_at,
                    event.not_before,
                    [(env.occurred_at, event.channel)],
                    [(env.occurred_at, event.expires_at)],
                )
                self._act(env, "issued", event.code_id, event.group_id, _issued(event))
        elif isinstance(event, CodeAmended | CodeRevoked | CodeSuperseded):
            self._code_changed(env, event)
        elif isinstance(event, LiveCodeConfigured):
            if self._wanted(env, None if self.filters.group is None else self.filters.group, None):
                groups = ", ".join(str(g) for g in event.group_ids)
                self._act(
                    env,
                    "live code configured",
                    event.live_code_id,
                    None,
                    f"{event.name!r}: {event.strategy} over {groups}",
                )
        elif isinstance(event, LiveCodeRevoked):
            self._act(env, "live code revoked", event.live_code_id, None, event.reason)
        elif isinstance(event, ScanAccepted | ScanRejected | ScanFoundMember | JoinRequested):
            self._scan(env, event)
        elif isinstance(event, MemberJoined):
            self._joined(env, event)
        elif isinstance(event, MemberLeft):
            if self._wanted(env, event.group_id, None):
                self.left[(event.group_id, event.person)].append(env.occurred_at)
        elif isinstance(event, PersonForgotten):
            if self._wanted(env, None if self.filters.group is None else self.filters.group, None):
                self.erased += 1
        elif isinstance(event, PersonalDataExpired) and env.occurred_at <= self.as_of:
            self.retention.append(
                {
                    "at": env.occurred_at,
                    "profile": event.profile,
                    "through": event.through.isoformat(),
                    "keys_destroyed": event.keys_destroyed,
                }
            )

    def _act(
        self, env: Envelope, action: str, subject: uuid.UUID, group: uuid.UUID | None, detail: str
    ) -> None:
        if env.occurred_at <= self.as_of:
            self.history.append(
                Action(env.occurred_at, action, str(subject), group, env.actor, detail)
            )

    def _code_changed(self, env: Envelope, event: Any) -> None:
        code = self.codes.get(event.code_id)
        if code is None:
            # Its CodeIssued is in the same partition and came first, unless filtered out.
            return
        if env.occurred_at > self.as_of:
            return
        if isinstance(event, CodeAmended):
            changes = ", ".join(f"{name}={getattr(event, name, None)}" for name in event.changed)
            if "channel" in event.changed:
                code.channel.append((env.occurred_at, event.channel))
            if "expires_at" in event.changed:
                code.expiry.append((env.occurred_at, event.expires_at))
            self._act(env, "amended", event.code_id, event.group_id, changes)
        elif isinstance(event, CodeRevoked):
            code.ended = ("revoked", env.occurred_at, env.actor, event.reason)
            self._act(env, "revoked", event.code_id, event.group_id, event.reason)
        else:
            code.ended = ("superseded", env.occurred_at, env.actor, f"by {event.by_code_id}")
            self._act(env, "superseded", event.code_id, event.group_id, f"by {event.by_code_id}")

    def _scan(self, env: Envelope, event: Any) -> None:
        if not self._wanted(env, event.group_id, event.code_id):
            return
        if isinstance(event, ScanRejected):
            outcome = event.reason
            self.scan_times.append((env.occurred_at, "rejected"))
        else:
            outcome = _OUTCOMES[type(event).__name__]
            self.scan_times.append((env.occurred_at, "scan"))
        self.reasons[outcome] += 1
        if event.code_id is not None:
            self.code_scans[event.code_id][outcome] += 1

    def _joined(self, env: Envelope, event: MemberJoined) -> None:
        if not self._wanted(env, event.group_id, event.code_id):
            return
        self.scan_times.append((env.occurred_at, "join"))
        if event.code_id is not None:
            self.code_joins[event.code_id] += 1
        self.joins[(event.group_id, event.person)].append(
            JoinRow(
                group_id=event.group_id,
                group_name=None,  # the names and channels are looked up at the end
                person=event.person,
                user=self._user(event.user),
                code_id=event.code_id,
                live_code_id=event.live_code_id,
                channel=None,
                verification=event.verification,
                joined_at=env.occurred_at,
                left_at=None,
                by=env.actor,
            )
        )

    # -- the result --------------------------------------------------------------------

    def result(self) -> ReportDoc:
        at = self.as_of
        rows: list[JoinRow] = []
        for key, joined in self.joins.items():
            leaves = sorted(self.left.get(key, []))
            for row in sorted(joined, key=lambda r: r.joined_at):
                after = [t for t in leaves if t >= row.joined_at]
                if after:
                    row.left_at = after[0]
                    leaves.remove(after[0])
                row.group_name = self.groups.get(row.group_id, (None, None))[0]
                code = self.codes.get(row.code_id) if row.code_id else None
                row.channel = code.channel_at(row.joined_at) if code else None
                rows.append(row)
        rows.sort(key=lambda r: r.joined_at)
        by_channel: Counter[tuple[uuid.UUID | None, str | None]] = Counter(
            (r.code_id, r.channel) for r in rows
        )
        codes = []
        for code in sorted(self.codes.values(), key=lambda c: c.issued_at):
            status = code.status_at(at)
            ended = code.ended if code.ended is not None and code.ended[1] <= at else None
            codes.append(
                CodeSummary(
                    code_id=code.code_id,
                    group_id=code.group_id,
                    group_name=self.groups.get(code.group_id, (None, None))[0],
                    channel=code.channel_at(at),
                    issued_at=code.issued_at,
                    issued_by=code.issued_by,
                    status=status,
                    ended_at=ended[1] if ended else None,
                    ended_by=ended[2] if ended else None,
                    reason=ended[3] if ended else None,
                    scans=dict(self.code_scans.get(code.code_id, {})),
                    joins=self.code_joins[code.code_id],
                )
            )
        unit, buckets = _timeline(self.scan_times)
        filters = {
            name: str(value)
            for name, value in (
                ("tenant", self.filters.tenant),
                ("group", self.filters.group),
                ("code", self.filters.code),
            )
            if value is not None
        }
        return ReportDoc(
            as_of=at,
            filters=filters,
            keys="unavailable" if self.reveal is None else "readable",
            history=sorted(self.history, key=lambda a: a.at),
            codes=codes,
            scans_by_reason=dict(self.reasons.most_common()),
            joins_by_code_and_channel=[
                ChannelJoins(code, channel, n) for (code, channel), n in by_channel.most_common()
            ],
            valid_at=ValidAt(at, [c.code_id for c in codes if c.status == "active"]),
            joins=rows,
            timeline_unit=unit,
            timeline=buckets,
            people_erased=self.erased,
            retention=sorted(self.retention, key=lambda r: r["at"]),
        )


_OUTCOMES = {
    "ScanAccepted": "accepted",
    "ScanFoundMember": "already a member",
    "JoinRequested": "join requested",
}


def _issued(event: CodeIssued) -> str:
    parts = [f"expires {event.expires_at:%Y-%m-%d %H:%M}" if event.expires_at else "permanent"]
    if event.max_scans:
        parts.append(f"{event.max_scans} scans")
    if event.daily_scan_limit:
        parts.append(f"{event.daily_scan_limit}/day")
    if event.verification.mode != "none":
        parts.append(f"verification {event.verification.mode}")
    if event.channel:
        parts.append(f"channel {event.channel}")
    return ", ".join(parts)


def _timeline(times: list[tuple[datetime, str]]) -> tuple[str, list[Bucket]]:
    if not times:
        return "hour", []
    first, last = min(t for t, _ in times), max(t for t, _ in times)
    unit = "day" if last - first > timedelta(days=2) else "hour"

    def start(t: datetime) -> datetime:
        t = t.astimezone(UTC)
        if unit == "day":
            return t.replace(hour=0, minute=0, second=0, microsecond=0)
        return t.replace(minute=0, second=0, microsecond=0)

    counts: dict[datetime, Counter[str]] = defaultdict(Counter)
    for t, kind in times:
        counts[start(t)][kind] += 1
    step = timedelta(days=1) if unit == "day" else timedelta(hours=1)
    buckets, at = [], start(first)
    while at <= start(last):
        c = counts.get(at, Counter())
        buckets.append(Bucket(at, c["scan"] + c["rejected"], c["join"], c["rejected"]))
        at += step
    return unit, buckets
