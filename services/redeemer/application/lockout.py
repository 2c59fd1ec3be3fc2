"""Wrong answers to a code's question (invite code, phone digits), counted and capped.

Counted per code for the person (5 in 10 minutes) and for the client's address (20: many
people can share one), so neither a new anonymous visitor per cookie nor many user ids
from one address get more guesses. The person is kept as a keyed `UserIndex` value and the
address as its rate-limit bucket (an IPv6 /64), never in clear. Counting is itself capped:
once a subject is at its limit in a window, further answers are not even evaluated.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from shared.crypto.user_index import UserIndex
from shared.dbtypes import Conn
from shared.refusals import Reason, Refusal
from shared.rules.subjects import IPAddress, address_key, person_key

PER_PERSON = 5
PER_ADDRESS = 20
WINDOW = timedelta(minutes=10)

_HELD = """
SELECT subject, failures, window_start FROM verification_failures
WHERE code_id = $1 AND subject = ANY($2) AND window_start > $3
"""
# One wrong answer more for each subject, unless it is at its limit this window.
_COUNT = """
INSERT INTO verification_failures AS f (code_id, subject, window_start, failures)
SELECT $1, s, $3, 1 FROM unnest($2::text[]) AS s
ON CONFLICT (code_id, subject) DO UPDATE SET
    failures = CASE WHEN f.window_start <= $3 - $4::interval THEN 1 ELSE f.failures + 1 END,
    window_start = CASE WHEN f.window_start <= $3 - $4::interval THEN $3 ELSE f.window_start END
WHERE f.window_start <= $3 - $4::interval
   OR f.failures < CASE WHEN f.subject LIKE 'address:%' THEN $6::int ELSE $5::int END
RETURNING subject, failures
"""


class Lockout:
    def __init__(self, users: UserIndex) -> None:
        self.users = users

    def subjects(
        self, tenant_id: uuid.UUID, user_id: str, address: IPAddress | None
    ) -> dict[str, int]:
        """Who a wrong answer counts against, and each one's limit."""
        found = {person_key(self.users, tenant_id, user_id): PER_PERSON}
        if address is not None:
            found[f"address:{address_key(address)}"] = PER_ADDRESS
        return found

    async def refuse_if_locked(
        self, conn: Conn, code_id: uuid.UUID, subjects: dict[str, int], now: datetime
    ) -> None:
        for row in await conn.fetch(_HELD, code_id, list(subjects), now - WINDOW):
            if row["failures"] >= subjects[row["subject"]]:
                raise _locked(row["window_start"], now, subjects[row["subject"]])

    async def count_wrong(
        self, conn: Conn, code_id: uuid.UUID, subjects: dict[str, int], now: datetime, what: str
    ) -> Refusal:
        """Count a wrong answer: the refusal to answer with (the last allowed, or locked)."""
        rows = await conn.fetch(
            _COUNT, code_id, list(subjects), now, WINDOW, PER_PERSON, PER_ADDRESS
        )
        counted = {r["subject"]: r["failures"] for r in rows}
        for subject, limit in subjects.items():
            if subject not in counted:
                return _locked(now, now, limit)
        left = min(limit - counted[s] for s, limit in subjects.items())
        return Refusal(
            Reason.VERIFICATION_FAILED, f"the {what} is not right", attempts_left=max(0, left)
        )


def _locked(window_start: datetime, now: datetime, limit: int) -> Refusal:
    wait = max(1, int((window_start + WINDOW - now).total_seconds()))
    return Refusal(
        Reason.TOO_MANY_ATTEMPTS,
        f"{limit} wrong answers in {int(WINDOW.total_seconds() // 60)} minutes; try again later",
        retry_after=wait,
    )
