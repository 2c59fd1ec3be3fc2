"""Aggregates: one fold rebuilds state from events; decisions are plain functions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from services.issuer.domain import code as codes
from services.issuer.domain import group as groups
from shared.events.issuer import CodeIssued, CodeRevoked, GroupCreated
from shared.events.recorded import Recorded

T0 = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
TENANT = uuid.uuid4()


def _issued(expires: datetime | None = T0 + timedelta(days=7)) -> Recorded:
    event = CodeIssued(
        code_id=uuid.uuid4(),
        group_id=uuid.uuid4(),
        key_id="k",
        payload="p",
        issued_at=T0,
        expires_at=expires,
        max_scans=3,
    )
    return Recorded(1, event, TENANT, T0)


def test_code_fold_and_status() -> None:
    code = codes.fold([_issued()])
    assert code is not None
    assert code.status(T0) == "active"
    assert code.status(T0 + timedelta(days=7)) == "expired"
    assert code.version == 1
    assert codes.fold([]) is None


def test_revoke_records_one_event_and_is_idempotent() -> None:
    code = codes.fold([_issued()])
    assert code is not None
    events = codes.revoke(code, "leaked")
    assert events == [CodeRevoked(code_id=code.code_id, group_id=code.group_id, reason="leaked")]
    revoked = codes.mutate(code, Recorded(2, events[0], TENANT, T0 + timedelta(hours=1)))
    assert revoked.status(T0) == "revoked"
    assert revoked.revoke_reason == "leaked"
    assert revoked.version == 2
    assert codes.revoke(revoked, "again") == []


def test_a_revoked_code_reports_revoked_even_after_expiry() -> None:
    code = codes.fold([_issued()])
    assert code is not None
    revoked = codes.mutate(code, Recorded(2, codes.revoke(code, "r")[0], TENANT, T0))
    assert revoked.status(T0 + timedelta(days=30)) == "revoked"


def test_group_fold_keeps_tenant_from_the_envelope() -> None:
    gid = uuid.uuid4()
    group = groups.fold(
        [Recorded(1, GroupCreated(group_id=gid, name="g", max_members=9), TENANT, T0)]
    )
    assert group is not None
    assert (group.group_id, group.tenant_id, group.max_members) == (gid, TENANT, 9)
