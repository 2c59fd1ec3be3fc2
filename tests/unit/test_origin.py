"""Which records are the producer's: the walk back from a batch signature, case by case."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import msgspec
import pytest

from shared.chain import GENESIS, link
from shared.crypto.signing import SigningKey
from shared.events.envelope import Envelope, canonical_bytes
from shared.store.origin import Item, LogKeys, Settled, batch_headers, item_of, settle

LOG = "qunma.issuer.events"
KEY = SigningKey.generate()


def _chain(count: int, *, start: bytes = GENESIS, first: int = 1, tag: str = "") -> list[Item]:
    items, prev = [], start
    for position in range(first, first + count):
        envelope = Envelope(
            event_id=uuid.UUID(int=position),
            type="GroupCreated",
            schema=1,
            tenant_id=None,
            stream_id=f"s{position}{tag}",
            stream_version=1,
            occurred_at=datetime(2026, 12, 1, tzinfo=UTC),
            data=msgspec.Raw(b"{}"),
            log=LOG,
            partition=0,
            position=position,
            prev_hash=prev.hex(),
        )
        body = canonical_bytes(envelope)
        items.append(item_of(envelope, body, position, {}))
        prev = link(prev, body)
    return items


def _signed(item: Item, key: SigningKey = KEY) -> Item:
    return item_of(
        item.envelope,
        item.body,
        item.offset,
        dict(batch_headers(key, LOG, 0, item.position, item.digest)),
    )


def _keys() -> LogKeys:
    keys = LogKeys()
    keys.update({KEY.key_id: KEY.public_b64})
    return keys


def _settle(items: list[Item], position: int = 0, trusted: list[Item] | None = None) -> Settled:
    keys = _keys()
    return settle(items, position, lambda i: keys.valid(LOG, 0, i), trusted or [])


def test_a_signed_batch_is_applied_in_order() -> None:
    chain = _chain(5)
    verdict = _settle([*chain[:4], _signed(chain[4])])
    assert [i.position for i in verdict.apply] == [1, 2, 3, 4, 5]
    assert verdict.not_the_producers == verdict.waiting == verdict.uncovered == []


def test_records_wait_until_a_signature_covers_them() -> None:
    chain = _chain(3)
    verdict = _settle(chain)
    assert verdict.signed_at is None and verdict.apply == [] and len(verdict.waiting) == 3


@pytest.mark.parametrize(
    "why",
    ["no key", "another key", "another partition's message", "a copied signature"],
)
def test_a_signature_that_does_not_verify_covers_nothing(why: str) -> None:
    chain = _chain(3)
    last = chain[2]
    if why == "no key":
        forged = item_of(last.envelope, last.body, 3, {"sig": b"AAAA", "kid": KEY.key_id.encode()})
    elif why == "another key":
        forged = _signed(last, SigningKey.generate())
    elif why == "another partition's message":
        headers = dict(batch_headers(KEY, LOG, 1, 3, last.digest))
        forged = item_of(last.envelope, last.body, 3, headers)
    else:
        headers = dict(batch_headers(KEY, LOG, 0, 2, chain[1].digest))
        forged = item_of(last.envelope, last.body, 3, headers)
    verdict = _settle([*chain[:2], forged])
    assert verdict.signed_at is None and verdict.apply == []


def test_a_forgery_at_the_next_position_is_not_the_producers() -> None:
    real = _chain(3)
    applied = real[:1]
    forged = _chain(1, start=applied[0].digest, first=2, tag="forged")[0]
    verdict = _settle([forged, real[1], _signed(real[2])], position=1)
    assert [i.position for i in verdict.apply] == [2, 3]
    assert verdict.apply[0].digest == real[1].digest
    assert verdict.not_the_producers == [forged]


def test_arrival_order_does_not_matter_and_copies_are_duplicates() -> None:
    chain = _chain(4)
    verdict = _settle([chain[1], chain[0], chain[2], chain[1], _signed(chain[3])])
    assert [i.position for i in verdict.apply] == [1, 2, 3, 4]
    assert verdict.duplicates == 1


def test_a_lost_record_leaves_what_came_before_it_uncovered_until_filled() -> None:
    chain = _chain(5)
    verdict = _settle([chain[0], chain[1], chain[3], _signed(chain[4])])
    assert verdict.lowest == 4 and [i.position for i in verdict.uncovered] == [1, 2]
    # the producer's record of position 3, from its log API, joins the chain to them
    verdict = _settle([chain[0], chain[1], chain[3], _signed(chain[4])], trusted=[chain[2]])
    assert verdict.lowest == 1 and [i.position for i in verdict.apply] == [1, 2, 3, 4, 5]


def test_already_applied_positions_are_duplicates_and_later_ones_wait() -> None:
    chain = _chain(6)
    verdict = _settle([*chain[:3], _signed(chain[3]), chain[4], chain[5]], position=2)
    assert [i.position for i in verdict.apply] == [3, 4]
    assert verdict.duplicates == 2
    assert [i.position for i in verdict.waiting] == [5, 6]
