"""The people the redeemer's events are about: their pseudonyms and their keys.

One user of one tenant is one person, named in events by a random pseudonym. Their personal
values are sealed with a key per retention class (the group's profile) and UTC day, so
retention can destroy a day's keys of one class, and erasure all of one person's.

The scan path learns the person and today's key with the scan's context (one query) and,
for someone new, makes them inside the scan's one call; every other writer asks
`qunma_person` (sql/person.sql), in its own transaction, which makes what is missing.
Keys are opened once per process; a key destroyed since is never handed out again, because
every writer reads the key's row in the transaction that uses it.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date
from typing import Any

import asyncpg

from services.redeemer.domain.inputs import Location
from shared.clock import Clock, utcnow
from shared.crypto.kek import Kek
from shared.crypto.personal import PersonKey, new_person
from shared.dbtypes import Conn
from shared.events.personal import Sealed
from shared.rules.subjects import IPAddress

PERSON = """
SELECT * FROM qunma_person(p_tenant => $1, p_user => $2, p_group => $3, p_day => $4,
                           p_new_person => $5, p_new_key_id => $6, p_new_wrapped => $7)
"""


@dataclass(frozen=True)
class PersonRef:
    """A person and the key to seal today's values about them with. `new_person` and
    `new_key` say what the scan's call must create (the scan path only)."""

    person: str
    key: PersonKey
    klass: str
    day: date
    wrapped: bytes
    new_person: bool = False
    new_key: bool = False

    def seal(self, field: str, value: str | None) -> Sealed | None:
        return None if value is None else self.key.seal(field, value)

    def user(self, user_id: str) -> Sealed:
        return self.key.seal("user", user_id)

    def seal_ip(self, ip: IPAddress | None) -> Sealed | None:
        return self.seal("ip", None if ip is None else str(ip))

    def seal_location(self, where: Location | None) -> Sealed | None:
        return self.seal("location", None if where is None else where.text())


class People:
    # An opened key is kept at most this long: a key destroyed by erasure or retention
    # leaves every replica's memory within minutes, not at its next restart.
    KEEP_OPENED = 600.0

    def __init__(self, kek: Kek, clock: Clock = utcnow) -> None:
        self.kek = kek
        self.clock = clock
        self._opened: dict[str, tuple[float, PersonKey]] = {}
        self._purged = time.monotonic()

    def today(self) -> date:
        return self.clock().astimezone(UTC).date()

    def _keep(self, key: PersonKey) -> PersonKey:
        now = time.monotonic()
        if now - self._purged > 60 or len(self._opened) >= 50_000:
            self._opened = {k: v for k, v in self._opened.items() if now - v[0] < self.KEEP_OPENED}
            if len(self._opened) >= 50_000:
                self._opened.clear()
            self._purged = now
        self._opened[key.key_id] = (now, key)
        return key

    def _open(self, key_id: str, wrapped: bytes) -> PersonKey:
        kept = self._opened.get(key_id)
        if kept is not None and time.monotonic() - kept[0] < self.KEEP_OPENED:
            return kept[1]
        return self._keep(PersonKey.unwrap(key_id, wrapped, self.kek))

    def _new_key(self) -> tuple[PersonKey, bytes]:
        key = PersonKey.generate()
        return key, key.wrap(self.kek)

    def from_context(self, row: asyncpg.Record | dict[str, Any], klass: str) -> PersonRef:
        """The person from a scan's context row (`person`, `person_key_id`,
        `person_key_wrapped`), or what to make for them."""
        day = self.today()
        person, key_id = row["person"], row["person_key_id"]
        if person is not None and key_id is not None:
            wrapped = bytes(row["person_key_wrapped"])
            return PersonRef(person, self._open(key_id, wrapped), klass, day, wrapped)
        key, wrapped = self._new_key()
        self._keep(key)
        if person is None:
            return PersonRef(new_person(), key, klass, day, wrapped, True, True)
        return PersonRef(person, key, klass, day, wrapped, False, True)

    def from_token(self, row: asyncpg.Record) -> PersonRef | None:
        """The person and key a claimed join token's scan was sealed with, if the key is
        still there."""
        if row["person"] is None or row["person_key_wrapped"] is None:
            return None
        wrapped = bytes(row["person_key_wrapped"])
        key = self._open(row["person_key_id"], wrapped)
        return PersonRef(row["person"], key, row["class"], row["day"], wrapped)

    async def get(
        self, conn: Conn, tenant_id: uuid.UUID, user_id: str, group_id: uuid.UUID | None
    ) -> PersonRef:
        """The person and today's key for events about `group_id` (its profile is the
        class), made if missing, in the caller's transaction."""
        key, wrapped = self._new_key()
        day = self.today()
        row = await conn.fetchrow(
            PERSON, tenant_id, user_id, group_id, day, new_person(), key.key_id, wrapped
        )
        assert row is not None
        found = bytes(row["wrapped"])
        return PersonRef(row["person"], self._open(row["key_id"], found), row["class"], day, found)
