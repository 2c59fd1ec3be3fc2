"""Is this code live? One order of checks (shared/rules/code_status.py), used by both
services; tests/integration/test_sql_rules.py holds the SQL function to the same table."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from shared.rules.code_status import REFUSAL, refusal, status

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)

TIMES = {"none": None, "past": NOW - HOUR, "now": NOW, "future": NOW + HOUR}


def expected(revoked: bool, superseded: bool, not_before: str, expires_at: str) -> str:
    """The documented order, written out once more as a table would read."""
    if revoked:
        return "revoked"
    if superseded:
        return "superseded"
    if expires_at in ("past", "now"):
        return "expired"
    if not_before == "future":
        return "scheduled"
    return "active"


MATRIX = list(itertools.product([False, True], [False, True], TIMES, TIMES))


@pytest.mark.parametrize(("revoked", "superseded", "not_before", "expires_at"), MATRIX)
def test_every_combination_follows_the_one_order(
    revoked: bool, superseded: bool, not_before: str, expires_at: str
) -> None:
    assert status(
        revoked=revoked,
        superseded=superseded,
        not_before=TIMES[not_before],
        expires_at=TIMES[expires_at],
        now=NOW,
    ) == expected(revoked, superseded, not_before, expires_at)


@pytest.mark.parametrize("found", ["revoked", "superseded", "expired", "scheduled"])
def test_each_status_but_active_refuses_with_its_reason(found: str) -> None:
    made = refusal(found, NOW + HOUR, NOW)  # type: ignore[arg-type]
    assert made.reason is REFUSAL[found]  # type: ignore[index]
    assert (made.retry_after is not None) is (found == "scheduled")
