"""The redeemer's SQL functions (services/redeemer/sql/, shared/store/functions/), called
directly on a real database: every refusal SQLSTATE, what a call leaves when it succeeds
and when it refuses, and one race on the cap.

The statements are the application's own (`tokens.ACCEPT`, `requests.COUNT`, the seat
calls in application/seats.py), so a test here fails when the SQL and its caller drift.
"""

from __future__ import annotations

import asyncio
import gc
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from services.redeemer.application import seats
from services.redeemer.application.combiner import ACCEPT_MANY, Combiner
from services.redeemer.application.people import PERSON
from services.redeemer.application.requests import COUNT
from services.redeemer.application.tokens import ACCEPT
from services.redeemer.domain.refusals import REFUSED, RETRY
from services.redeemer.schema import functions, migrations
from shared.crypto.personal import new_person
from shared.events.personal import Sealed
from shared.events.redeemer import ScanAccepted
from shared.store import migrate
from shared.store.eventstore import LogSpec, Pending, event_values
from tests.support.infra import Infra

LOG = LogSpec("test.redeemer", 2)
TENANT = uuid.UUID(int=7)
HOUR = timedelta(hours=1)


@pytest.fixture
async def db(infra: Infra) -> AsyncIterator[asyncpg.Pool]:
    async with infra.database() as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            await migrate.apply(conn, migrations(), functions())
        finally:
            await conn.close()
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=25)
        try:
            yield pool
        finally:
            await pool.close()


async def _group(pool: asyncpg.Pool, max_members: int = 10, **columns: Any) -> uuid.UUID:
    group_id = uuid.uuid4()
    names = ["group_id", "tenant_id", "name", "max_members", *columns]
    values = [group_id, TENANT, "g", max_members, *columns.values()]
    marks = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    await pool.execute(f"INSERT INTO groups ({', '.join(names)}) VALUES ({marks})", *values)
    return group_id


async def _code(pool: asyncpg.Pool, group_id: uuid.UUID, **columns: Any) -> uuid.UUID:
    code_id = uuid.uuid4()
    names = ["code_id", "tenant_id", "group_id", "key_id", "issued_at", *columns]
    values = [code_id, TENANT, group_id, "k1", datetime.now(UTC), *columns.values()]
    marks = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    await pool.execute(f"INSERT INTO codes ({', '.join(names)}) VALUES ({marks})", *values)
    return code_id


async def _state(pool: asyncpg.Pool, sqlstate: str | None, call: Any) -> str | None:
    try:
        await call
    except asyncpg.PostgresError as exc:
        return str(exc.sqlstate)
    return sqlstate


# -- qunma_count_scan ----------------------------------------------------------------------

NOW = datetime.now(UTC)

# (why, the code's columns, the daily limit passed, the SQLSTATE)
COUNT_REFUSALS = [
    ("revoked", {"status": "revoked"}, None, "QM011"),
    ("superseded", {"status": "superseded"}, None, "QM012"),
    ("expired", {"expires_at": NOW - HOUR}, None, "QM013"),
    ("not valid yet", {"not_before": NOW + HOUR}, None, "QM014"),
    (
        "revoked and expired: the owner's act first",
        {"status": "revoked", "expires_at": NOW - HOUR},
        None,
        "QM011",
    ),
    ("scans used up", {"max_scans": 3, "scans_used": 3}, None, "QM001"),
]


@pytest.mark.parametrize(
    ("columns", "sqlstate"),
    [pytest.param(c, s, id=why) for why, c, _, s in COUNT_REFUSALS],
)
async def test_count_scan_refuses_with_the_sqlstate_of_why(
    db: asyncpg.Pool, columns: dict[str, Any], sqlstate: str
) -> None:
    code_id = await _code(db, await _group(db), **columns)
    before = await db.fetchval("SELECT scans_used FROM codes WHERE code_id = $1", code_id)
    found = await _state(db, None, db.execute(COUNT, code_id, NOW, date.today(), None))
    assert found == sqlstate
    assert sqlstate in REFUSED  # the domain maps it to a reason
    assert await db.fetchval("SELECT scans_used FROM codes WHERE code_id = $1", code_id) == before


async def test_count_scan_counts_the_day_only_for_a_capped_code(db: asyncpg.Pool) -> None:
    group = await _group(db)
    capped, free = await _code(db, group, daily_scan_limit=2), await _code(db, group)
    today = date(2026, 12, 2)
    for _ in range(2):
        await db.execute(COUNT, capped, NOW, today, 2)
        await db.execute(COUNT, free, NOW, today, None)
    assert await _state(db, None, db.execute(COUNT, capped, NOW, today, 2)) == "QM002"
    # the refused call counted nothing: not the day, not the code
    assert await db.fetchval("SELECT scans_used FROM codes WHERE code_id = $1", capped) == 2
    assert await db.fetch("SELECT code_id, scans FROM code_daily_scans") == [(capped, 2)]
    # the next day is a new count
    await db.execute(COUNT, capped, NOW, today + timedelta(days=1), 2)


# -- seats -----------------------------------------------------------------------------------


async def test_a_seat_is_reserved_only_below_the_cap_and_a_live_codes_switch_at(
    db: asyncpg.Pool,
) -> None:
    group = await _group(db, max_members=3)
    reserve = "SELECT * FROM qunma_seat_reserve(p_group => $1, p_cap => $2)"
    row = await db.fetchrow(reserve, group, None)
    assert row is not None and (row["members"], row["max_members"]) == (0, 3)
    async with db.acquire() as conn:
        await seats.joined(conn, group, mode="invite_code", created=True, seat_reserved=True)
    assert await db.fetchrow("SELECT members, reserved, verified_joins FROM groups") == (1, 0, 1)
    await db.fetchrow(reserve, group, 2)  # switch_at 2: the second seat is the last
    assert await _state(db, None, db.fetchrow(reserve, group, 2)) == "QM003"
    await db.fetchrow(reserve, group, None)  # the group's own cap still has one
    assert await _state(db, None, db.fetchrow(reserve, group, None)) == "QM003"
    async with db.acquire() as conn:
        assert not await seats.take_free(conn, group)
        await seats.released(conn, Counter({group: 2}))
        assert await seats.take_free(conn, group)
        await seats.left(conn, group, mode="invite_code")
    assert await db.fetchrow("SELECT members, reserved, verified_joins FROM groups") == (0, 0, 0)


async def test_released_seats_of_several_groups_move_together(db: asyncpg.Pool) -> None:
    a, b = await _group(db), await _group(db)
    async with db.acquire() as conn:
        for group, n in ((a, 3), (b, 1)):
            await seats.reserved(conn, group, n)
        await seats.released(conn, Counter({b: 1, a: 2}))
    assert dict(await db.fetch("SELECT group_id, reserved FROM groups")) == {a: 1, b: 0}


# -- qunma_person --------------------------------------------------------------------------


async def test_a_person_and_their_days_key_are_made_once(db: asyncpg.Pool) -> None:
    group = await _group(db, profile="qq")
    call = PERSON
    day = date(2026, 12, 2)
    first = await db.fetchrow(call, TENANT, "u1", group, day, "p_a", "k_a", b"w" * 40)
    again = await db.fetchrow(call, TENANT, "u1", group, day, "p_b", "k_b", b"x" * 40)
    other_class = await db.fetchrow(call, TENANT, "u1", None, day, "p_c", "k_c", b"y" * 40)
    assert first is not None and again is not None and other_class is not None
    assert tuple(first) == tuple(again) == ("p_a", "k_a", b"w" * 40, "qq")
    assert (other_class["person"], other_class["class"]) == ("p_a", "personal")


# -- qunma_accept_scan ---------------------------------------------------------------------


def _event(scan_id: uuid.UUID, group_id: uuid.UUID, code_id: uuid.UUID) -> tuple[object, ...]:
    sealed = Sealed("k", "c")
    return event_values(
        LOG,
        Pending(
            ScanAccepted(
                scan_id=scan_id,
                code_id=code_id,
                group_id=group_id,
                person="p",
                user=sealed,
                token_expires_at=NOW + timedelta(seconds=15),
            ),
            f"scan:{scan_id}",
            1,
            TENANT,
            str(group_id),
        ),
        NOW,
    )


def _scan(
    group_id: uuid.UUID,
    code_id: uuid.UUID,
    user: str,
    *,
    held: uuid.UUID | None = None,
    person: str | None = None,
    key_id: str | None = None,
    new: bool = True,
) -> tuple[object, ...]:
    """One scan's arguments, in qunma_accept_scan's order (and qunma_scan's fields)."""
    scan_id = uuid.uuid4()
    return (
        uuid.uuid4().bytes * 2,  # token hash
        scan_id,
        TENANT,
        group_id,
        code_id,
        None,  # live code
        user,
        None,  # device
        "none",
        False,
        NOW + timedelta(seconds=15),
        None,  # channel
        NOW,
        held,
        date.today(),
        None,  # daily limit
        None,  # cap
        person or new_person(),
        key_id or f"k-{uuid.uuid4().hex}",
        b"w" * 40,
        "personal",
        date.today(),
        new,
        new,
        _event(scan_id, group_id, code_id),
    )


async def _accept(
    pool: asyncpg.Pool, group_id: uuid.UUID, code_id: uuid.UUID, user: str, **how: Any
) -> asyncpg.Record | None:
    return await pool.fetchrow(ACCEPT, *_scan(group_id, code_id, user, **how))


async def _rows(pool: asyncpg.Pool) -> dict[str, int]:
    tables = ("join_tokens", "scan_facts", "events", "people", "person_keys", "spent_tokens")
    return {t: await pool.fetchval(f"SELECT count(*) FROM {t}") for t in tables}


async def test_an_accepted_scan_writes_its_rows_and_event_in_one_call(db: asyncpg.Pool) -> None:
    group = await _group(db)
    code = await _code(db, group, max_scans=5)
    row = await _accept(db, group, code, "u1")
    assert row is not None and row["group_id"] == group and row["members"] == 0
    assert await _rows(db) == {
        "join_tokens": 1,
        "scan_facts": 1,
        "events": 1,
        "people": 1,
        "person_keys": 1,
        "spent_tokens": 0,
    }
    event = await db.fetchrow("SELECT type, tenant_id, stream_id, position FROM events")
    assert event is not None
    assert (event["type"], event["tenant_id"], event["position"]) == ("ScanAccepted", TENANT, None)
    assert await db.fetchrow("SELECT reserved FROM groups") == (1,)
    assert await db.fetchrow("SELECT scans_used FROM codes") == (1,)


async def test_scanning_again_replaces_the_token_and_keeps_the_seat(db: asyncpg.Pool) -> None:
    group = await _group(db)
    code = await _code(db, group)
    await _accept(db, group, code, "u1", person="p1", key_id="k1")
    held = await db.fetchval("SELECT scan_id FROM join_tokens")
    # the caller read no token (held None), but there is one: QM004, read again
    assert (
        await _state(db, None, _accept(db, group, code, "u1", person="p1", key_id="k1", new=False))
        == "QM004"
    )
    await _accept(db, group, code, "u1", held=held, person="p1", key_id="k1", new=False)
    assert await db.fetchrow("SELECT reserved FROM groups") == (1,)
    assert await db.fetchval("SELECT outcome FROM spent_tokens") == "superseded"
    assert await db.fetchval("SELECT scan_id FROM join_tokens") != held


async def test_a_key_that_is_not_the_persons_is_qm005(db: asyncpg.Pool) -> None:
    group = await _group(db)
    code = await _code(db, group)
    await _accept(db, group, code, "u1", person="p1", key_id="k1")
    # another scan of u1 sealed with a person (or key) it thought new, made first by the other
    found = await _state(db, None, _accept(db, group, code, "u1", person="p2", key_id="k2"))
    assert found == "QM005"
    assert "QM005" in RETRY


@pytest.mark.parametrize(
    ("group_columns", "code_columns", "sqlstate"),
    [
        pytest.param({"max_members": 1, "members": 1}, {}, "QM003", id="group full"),
        pytest.param({}, {"max_scans": 1, "scans_used": 1}, "QM001", id="scans used up"),
        pytest.param({}, {"status": "revoked"}, "QM011", id="revoked since the read"),
    ],
)
async def test_a_refused_scan_leaves_nothing_at_all(
    db: asyncpg.Pool, group_columns: dict[str, Any], code_columns: dict[str, Any], sqlstate: str
) -> None:
    group = await _group(db, **group_columns)
    code = await _code(db, group, **code_columns)
    before = await _rows(db)
    assert await _state(db, None, _accept(db, group, code, "u1")) == sqlstate
    assert await _rows(db) == before  # not the person, not the key, not the event


async def test_racing_scans_take_exactly_the_free_seats(db: asyncpg.Pool) -> None:
    """20 people at once on one code of a group with 5 seats: 5 tokens, 15 group_full, and
    the counters say exactly that."""
    group = await _group(db, max_members=5)
    code = await _code(db, group)
    results = await asyncio.gather(
        *(_state(db, "ok", _accept(db, group, code, f"u{i}")) for i in range(20))
    )
    assert Counter(results) == {"ok": 5, "QM003": 15}
    assert await db.fetchrow("SELECT members, reserved FROM groups") == (0, 5)
    assert await db.fetchval("SELECT count(*) FROM join_tokens") == 5
    assert await db.fetchval("SELECT count(*) FROM events") == 5
    # a refused call counted no scan: the code's counter is the tokens handed out
    assert await db.fetchval("SELECT scans_used FROM codes") == 5


# -- qunma_accept_scans and the combiner -------------------------------------------------------


async def test_a_batch_decides_each_scan_as_it_would_be_alone(db: asyncpg.Pool) -> None:
    """In one call: three scans take the last seats, one whose token moved reads again
    (QM004), the rest find the group full; each refusal leaves nothing of its scan."""
    group = await _group(db, max_members=4)
    code = await _code(db, group)
    await _accept(db, group, code, "u0", person="p0", key_id="k0")
    batch = [
        _scan(group, code, "u1"),
        _scan(group, code, "u0", person="p0", key_id="k0", new=False),  # held is not None
        _scan(group, code, "u2"),
        _scan(group, code, "u3"),
        _scan(group, code, "u4"),
        _scan(group, code, "u5"),
    ]
    rows = await db.fetch(ACCEPT_MANY, batch)
    assert [(r["i"], r["refused"]) for r in rows] == [
        (1, None),
        (2, "QM004"),
        (3, None),
        (4, None),
        (5, "QM003"),
        (6, "QM003"),
    ]
    assert [r["members"] for r in rows if r["refused"] is None] == [0, 0, 0]
    assert await db.fetchrow("SELECT members, reserved FROM groups") == (0, 4)
    assert await db.fetchval("SELECT scans_used FROM codes") == 4
    assert await _rows(db) == {
        "join_tokens": 4,
        "scan_facts": 4,
        "events": 4,
        "people": 4,
        "person_keys": 4,
        "spent_tokens": 0,
    }
    assert await db.fetch(ACCEPT_MANY, []) == []


async def test_two_combiners_racing_on_one_code_hand_out_exactly_the_seats(
    db: asyncpg.Pool,
) -> None:
    """Two replicas' combiners, 60 people at once on a code with 25 seats: scans that arrive
    together go in one batch, and the seats and counters are exact."""
    group = await _group(db, max_members=25)
    code = await _code(db, group)
    replicas = [Combiner(db), Combiner(db)]
    rows = await asyncio.gather(
        *(replicas[i % 2].accept(code, _scan(group, code, f"u{i}")) for i in range(60))
    )
    assert Counter(r["refused"] for r in rows) == {None: 25, "QM003": 35}
    assert all(c.batches < c.scans == 30 for c in replicas)  # they were combined
    assert await db.fetchrow("SELECT members, reserved FROM groups") == (0, 25)
    assert await db.fetchval("SELECT scans_used FROM codes") == 25
    assert await db.fetchval("SELECT count(*) FROM join_tokens") == 25
    assert await db.fetchval("SELECT count(*) FROM events") == 25


def _failing_scan(group: uuid.UUID, code: uuid.UUID, user: str) -> tuple[Any, ...]:
    bad = list(_scan(group, code, user))
    bad[24] = ("not an event",)  # not a qunma_event: the whole call fails before it runs
    return tuple(bad)


async def test_a_batch_that_fails_fails_each_of_its_scans_and_leaves_nothing(
    db: asyncpg.Pool,
) -> None:
    group = await _group(db)
    code = await _code(db, group)
    combiner = Combiner(db)
    results = await asyncio.gather(
        combiner.accept(code, _scan(group, code, "u1")),
        combiner.accept(code, _failing_scan(group, code, "u2")),
        return_exceptions=True,
    )
    assert all(isinstance(r, Exception) for r in results), results
    assert await _rows(db) == dict.fromkeys(
        ("join_tokens", "scan_facts", "events", "people", "person_keys", "spent_tokens"), 0
    )


async def test_a_failed_batch_whose_caller_went_away_is_not_reported_as_unread(
    db: asyncpg.Pool,
) -> None:
    group = await _group(db)
    code = await _code(db, group)
    combiner = Combiner(db)
    reported: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _, context: reported.append(context))
    try:
        caller = asyncio.create_task(combiner.accept(code, _failing_scan(group, code, "u3")))
        async with asyncio.timeout(5):  # queued, its batch on its way
            while not combiner._tasks:
                await asyncio.sleep(0)
        caller.cancel()  # the client hung up
        await combiner.close()  # the batch failed in the database
        del caller
        gc.collect()
    finally:
        loop.set_exception_handler(None)
    assert combiner.batches == 0
    assert reported == []
