"""A member leaving a group: the seat is free again."""

from __future__ import annotations

import uuid

from services.redeemer.application import seats
from services.redeemer.application.people import People
from services.redeemer.domain.people import ERASED
from shared.events.personal import Sealed
from shared.events.redeemer import MemberLeft
from shared.ids import uuid7
from shared.refusals import Reason, Refusal
from shared.store.unit_of_work import Outbox

_LEAVE = """
DELETE FROM memberships m USING groups g
WHERE m.group_id = $1 AND m.user_id = $2 AND g.group_id = m.group_id AND g.tenant_id = $3
RETURNING m.verification, m.person
"""


async def leave(
    outbox: Outbox, people: People, tenant_id: uuid.UUID, group_id: uuid.UUID, user_id: str
) -> None:
    async with outbox.unit() as uow:
        left = await uow.conn.fetchrow(_LEAVE, group_id, user_id, tenant_id)
        if left is None:
            raise Refusal(Reason.NOT_FOUND, f"{user_id!r} is not a member of group {group_id}")
        verification = left["verification"]
        # The event names the membership's person; the user id is sealed with the person
        # key of whoever holds that user id now (the same person). An erased member's name
        # is a pseudonym already: nothing to seal, and no person to make for it.
        if user_id.startswith(ERASED):
            user = Sealed("", user_id)
        else:
            user = (await people.get(uow.conn, tenant_id, user_id, group_id)).user(user_id)
        await seats.left(uow.conn, group_id, mode=verification)
        uow.record(
            MemberLeft(
                group_id=group_id,
                person=left["person"],
                user=user,
                verification=verification,
            ),
            stream_id=f"leave:{uuid7()}",
            version=1,
            tenant_id=tenant_id,
            key=str(group_id),
        )
