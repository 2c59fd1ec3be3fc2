"""A scan, from its QR text to its answer: the code's signature (signatures.py), the
scan's context in one read, the ordered rules (domain/admission.py), then one of: the
membership found, the wrong-answer lockout and a join request (requests.py) or a join
token (tokens.py). A live code's scan goes to live.py. Whatever is refused is recorded
once, here, after the refused transaction rolled back (outcomes.py).
"""

from __future__ import annotations

import uuid

import asyncpg

from services.redeemer.application.live import LiveScans
from services.redeemer.application.lockout import Lockout
from services.redeemer.application.outcomes import Outcomes, Subject
from services.redeemer.application.people import People
from services.redeemer.application.propagation import Projected, not_propagated
from services.redeemer.application.requests import JoinRequests
from services.redeemer.application.results import Scanned
from services.redeemer.application.signatures import CodeSignatures
from services.redeemer.application.tokens import Grant, Tokens
from services.redeemer.domain.admission import CodeContext, answer_right, decide
from services.redeemer.domain.inputs import ScanInput
from services.redeemer.domain.refusals import Retry
from shared import codetoken
from shared.clock import Clock, utcnow
from shared.ids import uuid7
from shared.refusals import Refusal

# The code, its group, and this person's standing in both, in one read.
CONTEXT = """
SELECT c.*, g.name AS group_name, g.members, g.reserved, g.max_members, g.profile,
       g.timezone, g.verified_joins, m.joined_at AS member_since, t.scan_id AS held_scan_id,
       p.person, k.key_id AS person_key_id, k.wrapped AS person_key_wrapped, now() AS db_now
FROM codes c JOIN groups g ON g.group_id = c.group_id
LEFT JOIN memberships m ON m.group_id = c.group_id AND m.user_id = $2
LEFT JOIN join_tokens t ON t.group_id = c.group_id AND t.user_id = $2
LEFT JOIN people p ON p.tenant_id = c.tenant_id AND p.user_id = $2
-- A lateral lookup (LIMIT keeps the planner from flattening it): the key is found by its
-- whole unique index, never by scanning the day's keys of every person.
LEFT JOIN LATERAL (
    SELECT k.key_id, k.wrapped FROM person_keys k
    WHERE k.tenant_id = c.tenant_id AND k.person = p.person AND k.class = g.profile
      AND k.day = $3
    LIMIT 1
) k ON true
WHERE c.code_id = $1
"""
ATTEMPTS = 3  # the same person scanning at the same moment: read again, then reissue


class Scanner:
    def __init__(
        self,
        *,
        signatures: CodeSignatures,
        projected: Projected,
        people: People,
        outcomes: Outcomes,
        tokens: Tokens,
        requests: JoinRequests,
        live: LiveScans,
        lockout: Lockout,
        invite_secret: bytes,
        clock: Clock = utcnow,
    ) -> None:
        self.signatures = signatures
        self.projected = projected
        self.people = people
        self.outcomes = outcomes
        self.tokens = tokens
        self.requests = requests
        self.live = live
        self.lockout = lockout
        self.invite_secret = invite_secret
        self.clock = clock

    async def scan(self, tenant_id: uuid.UUID | None, scan: ScanInput) -> Scanned:
        """`tenant_id` is the caller's (API); None for the landing page, where the code
        itself says whose it is."""
        scan_id = uuid7()
        token, tenant = await self._verified(tenant_id, scan, scan_id)
        if token.kind == "live":
            return await self.live.scan(
                Subject(tenant, scan_id, scan.user_id, live_code_id=token.code_id, scan=scan),
                scan,
            )
        row = await self.projected.row(CONTEXT, token.code_id, scan.user_id, self.people.today())
        if row is None:
            raise not_propagated()
        code = CodeContext.of(row)
        subject = Subject(
            tenant,
            scan_id,
            scan.user_id,
            code_id=code.code_id,
            group_id=code.group_id,
            channel=code.channel,
            scan=scan,
        )
        try:
            return await self._admit(subject, code, row, scan)
        except Refusal as refusal:
            await self.outcomes.rejected(subject, refusal.reason)
            raise refusal.adding(fallback_url=code.fallback_url) from None

    async def _verified(
        self, tenant_id: uuid.UUID | None, scan: ScanInput, scan_id: uuid.UUID
    ) -> tuple[codetoken.CodeToken, uuid.UUID]:
        try:
            return await self.signatures.verify(scan.payload, tenant_id)
        except Refusal as refusal:
            if tenant_id is not None:  # a rejection is recorded for the tenant that asked
                await self.outcomes.rejected(
                    Subject(tenant_id, scan_id, scan.user_id, scan=scan), refusal.reason
                )
            raise

    async def _admit(
        self, subject: Subject, code: CodeContext, row: asyncpg.Record, scan: ScanInput
    ) -> Scanned:
        now = self.clock()
        admission = decide(code, scan, now)
        if admission.then == "member":
            assert code.member_since is not None
            return await self.outcomes.member(subject, code.member_since)
        if admission.question is not None:
            await self._check_answer(subject, code, scan)
        if admission.then == "request":
            return await self.requests.ask(subject, code, scan)
        return await self._token(subject, code, row, scan)

    async def _check_answer(self, subject: Subject, code: CodeContext, scan: ScanInput) -> None:
        """A wrong answer is counted, and a subject at its limit is not even evaluated."""
        now = self.clock()
        against = self.lockout.subjects(
            subject.tenant_id, subject.user_id, scan.ip if scan.address_is_persons else None
        )
        async with self.projected.pool.acquire() as conn:
            await self.lockout.refuse_if_locked(conn, code.code_id, against, now)
            if answer_right(code, scan, self.invite_secret):
                return
            raise await self.lockout.count_wrong(
                conn, code.code_id, against, now, code.verification_mode.replace("_", " ")
            )

    async def _token(
        self, subject: Subject, code: CodeContext, row: asyncpg.Record, scan: ScanInput
    ) -> Scanned:
        for attempt in range(ATTEMPTS):
            grant = Grant(
                group_id=code.group_id,
                held=code.held_scan_id,
                db_now=code.db_now,
                person=self.people.from_context(row, code.profile),
                verification=code.verification_mode,
                bind_device=code.bind_device,
                day=code.day(self.clock()),
                daily_limit=code.daily_scan_limit,
                timezone=code.timezone,
                not_before=code.not_before,
            )
            try:
                return await self.tokens.hand_out(subject, scan, grant)
            except Retry:
                if attempt == ATTEMPTS - 1:
                    raise
                fresh = await self.projected.row(
                    CONTEXT, code.code_id, subject.user_id, self.people.today(), wait=False
                )
                if fresh is not None:
                    row, code = fresh, CodeContext.of(fresh)
        raise AssertionError("unreachable")
