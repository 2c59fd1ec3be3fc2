"""The replay of one partition, on chains built here with the real envelope, chain and
tree code: what it accepts, what it names, and that its memory does not grow."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import msgspec

from shared.audit.merkle import Frontier, leaf_hash
from shared.audit.partition import WINDOW
from shared.audit.run import _share
from shared.audit.verify import PartitionCheck
from shared.chain import GENESIS, link
from shared.crypto.signing import SigningKey, b64url
from shared.events.base import encode_data
from shared.events.envelope import Envelope, canonical_bytes
from shared.events.issuer import GroupCreated
from shared.events.log import CheckpointSealed, checkpoint_message
from shared.store.sealing import rfc3339

LOG, START = "unit.log", datetime(2026, 11, 1, tzinfo=UTC)


def _chain(n: int, every: int = 0, key: SigningKey | None = None) -> list[tuple[bytes, int, bytes]]:
    """n records of partition 0, a signed checkpoint after every `every` events."""
    out: list[tuple[bytes, int, bytes]] = []
    prev, tree, since = GENESIS, Frontier(), 0
    for _ in range(n):
        position = len(out) + 1
        at = START + timedelta(seconds=position)
        if every and since == every:
            assert key is not None
            root = tree.root().hex()
            message = checkpoint_message(LOG, 0, position - 1, root, prev.hex(), rfc3339(at))
            event: object = CheckpointSealed(
                tree_size=position - 1,
                tree_root=root,
                chain_head=prev.hex(),
                sealed_at=rfc3339(at),
                key_id=key.key_id,
                signature=b64url(key.sign(message)),
            )
            since = 0
        else:
            event = GroupCreated(group_id=uuid.uuid4(), name=f"g{position}", max_members=200)
            since += 1
        body = canonical_bytes(
            Envelope(
                event_id=uuid.uuid4(),
                type=type(event).__name__,
                schema=1,
                tenant_id=None,
                stream_id=f"s{position}",
                stream_version=1,
                occurred_at=at,
                data=msgspec.Raw(encode_data(event)),  # type: ignore[arg-type]
                log=LOG,
                partition=0,
                position=position,
                prev_hash=prev.hex(),
            )
        )
        prev = link(prev, body)
        tree.append(leaf_hash(prev))
        out.append((body, position - 1, prev))
    return out


def _check(records: list[tuple[bytes, int, bytes]], **kw: object) -> PartitionCheck:
    """Replayed and finished as if read right after the last record was written (the
    records are a second apart): no tail is old enough to count as truncation."""
    check = PartitionCheck(LOG, 0, **kw)  # type: ignore[arg-type]
    check.feed(records)
    check.finish(START + timedelta(seconds=len(records)), len(records), 0)
    return check


def test_a_clean_chain_with_checkpoints_passes_and_its_claims_verify() -> None:
    key = SigningKey.generate()
    check = _check(_chain(50, every=7, key=key))
    assert check.finding is None and check.position == 50 and check.checkpoints == 6
    assert len(check.claims) == 6


def test_a_redelivered_run_is_tolerated_only_when_asked_and_only_through_the_head() -> None:
    records = _chain(20)
    again = records + records[15:]  # 16..20 sent again, as a restarted relay does
    assert _check(again).finding.kind == "duplicated"  # type: ignore[union-attr]
    tolerant = _check(again, tolerate_duplicates=True)
    assert tolerant.finding is None and tolerant.duplicates_tolerated == 5
    # A re-delivery that stops short of the head is no re-delivery.
    short = _check(records + records[15:17], tolerate_duplicates=True).finding
    assert short is not None and (short.kind, short.position) == ("duplicated", 16)
    # Nor is one that skips a record.
    skipping = _check([*records, records[15], records[17]], tolerate_duplicates=True).finding
    assert skipping is not None and skipping.kind == "duplicated"


def test_a_position_far_out_of_place_is_reordered_not_dropped() -> None:
    records = _chain(40)
    moved = records[:10] + records[11:] + [records[10]]
    finding = _check(moved).finding
    assert finding is not None and (finding.kind, finding.position) == ("reordered", 11)


def test_memory_per_partition_does_not_grow_with_the_log() -> None:
    check = _check(_chain(3 * WINDOW))
    assert check.finding is None
    assert len(check._recent) == WINDOW
    assert len(check._stack) <= (3 * WINDOW).bit_length()


def test_partitions_are_shared_evenly_among_audit_workers() -> None:
    parts = [("a", p) for p in range(4)] + [("b", p) for p in range(4)]
    # Sizes unknown (an export): two each.
    assert sorted(len(s) for s in _share(parts, {}, 4)) == [2, 2, 2, 2]
    # Known sizes: the big partition alone, the small ones together.
    sizes = {("a", 0): 1000, ("a", 1): 10, ("a", 2): 10, ("a", 3): 10}
    shares = _share(parts[:4], sizes, 2)
    assert [("a", 0)] in shares and sum(len(s) for s in shares) == 4


def test_records_that_came_early_are_a_re_delivery_once_each_matches_its_place() -> None:
    """What a relay that published into a broker wiped a moment before leaves: the new
    records first, then the republished log from position 1, the new ones again."""
    records = _chain(12)
    early = records[9:] + records  # 10..12 before the republish of 1..12
    strict = _check(early).finding
    assert strict is not None and (strict.kind, strict.position) == ("duplicated", 10)
    assert "--tolerate-duplicates accepts them" in strict.detail
    tolerant = _check(early, tolerate_duplicates=True)
    assert tolerant.finding is None and tolerant.duplicates_tolerated == 3
    assert tolerant.position == 12


def test_an_early_record_that_differs_from_the_one_at_its_place_is_edited() -> None:
    records = _chain(12)
    other = _chain(12)  # the same positions, other events
    finding = _check([other[10], *records], tolerate_duplicates=True).finding
    assert finding is not None and (finding.kind, finding.position) == ("edited", 11)


def test_an_early_record_never_seen_at_its_place_is_reordered() -> None:
    records = _chain(12)
    finding = _check([records[11], *records[:11]], tolerate_duplicates=True).finding
    assert finding is not None and (finding.kind, finding.position) == ("reordered", 1)


def test_two_swapped_records_are_reordered_even_when_tolerating() -> None:
    records = _chain(12)
    swapped = [*records[:4], records[5], records[4], *records[6:]]
    for tolerant in (False, True):
        finding = _check(swapped, tolerate_duplicates=tolerant).finding
        assert finding is not None and (finding.kind, finding.position) == ("reordered", 5)
