"""The hash chain: each hash covers the previous one and the exact bytes."""

from __future__ import annotations

from shared.chain import GENESIS, link


def _chain(bodies: list[bytes]) -> list[bytes]:
    hashes, prev = [], GENESIS
    for body in bodies:
        prev = link(prev, body)
        hashes.append(prev)
    return hashes


def test_chain_is_deterministic() -> None:
    bodies = [b'{"a":1}', b'{"a":2}', b'{"a":3}']
    assert _chain(bodies) == _chain(list(bodies))


def test_any_change_changes_every_later_hash() -> None:
    bodies = [b'{"a":1}', b'{"a":2}', b'{"a":3}']
    original = _chain(bodies)
    edited = _chain([bodies[0], b'{"a":9}', bodies[2]])
    assert edited[0] == original[0]
    assert edited[1] != original[1]
    assert edited[2] != original[2]


def test_order_and_omission_are_detected() -> None:
    bodies = [b"x", b"y", b"z"]
    assert _chain([b"y", b"x", b"z"])[-1] != _chain(bodies)[-1]
    assert _chain([b"x", b"z"])[-1] != _chain(bodies)[-1]


def test_hash_is_sha256_of_prev_bytes_and_body() -> None:
    import hashlib

    assert link(GENESIS, b"body") == hashlib.sha256(bytes(32) + b"body").digest()
