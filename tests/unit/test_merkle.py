"""The Merkle tree against a direct RFC 9162 MTH, and its proofs for every small size."""

from __future__ import annotations

import hashlib

import pytest

from shared.audit import merkle


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 MTH, straight from the definition."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << (len(leaves) - 1).bit_length() - 1
    return merkle.node_hash(mth(leaves[:k]), mth(leaves[k:]))


def _tree(n: int) -> tuple[list[bytes], dict[merkle.Node, bytes], list[bytes]]:
    frontier = merkle.Frontier()
    stored: dict[merkle.Node, bytes] = {}
    roots = []
    leaves = [merkle.leaf_hash(hashlib.sha256(str(i).encode()).digest()) for i in range(n)]
    for leaf in leaves:
        stored.update(frontier.append(leaf))
        roots.append(frontier.root())
    return leaves, stored, roots


async def _reader(stored: dict[merkle.Node, bytes]) -> merkle.NodeReader:
    async def read(nodes: list[merkle.Node]) -> dict[merkle.Node, bytes]:
        return {n: stored[n] for n in nodes}

    return read


def test_frontier_root_is_the_rfc_root_at_every_size() -> None:
    leaves, _, roots = _tree(70)
    for size in range(1, 71):
        assert roots[size - 1] == mth(leaves[:size]), size
    assert merkle.Frontier().root() == mth([])


async def test_inclusion_proofs_verify_and_fail_when_edited() -> None:
    leaves, stored, roots = _tree(33)
    read = await _reader(stored)
    for size in range(1, 34):
        for index in range(size):
            path = await merkle.range_hashes(merkle.inclusion_ranges(index, size), read)
            assert merkle.verify_inclusion(index, size, leaves[index], path, roots[size - 1])
            if path:
                bad = [*path]
                bad[0] = bytes(32)
                assert not merkle.verify_inclusion(index, size, leaves[index], bad, roots[size - 1])
            assert not merkle.verify_inclusion(index, size, bytes(32), path, roots[size - 1])


async def test_consistency_proofs_verify_and_fail_when_edited() -> None:
    _, stored, roots = _tree(40)
    read = await _reader(stored)
    for second in range(1, 41):
        for first in range(1, second + 1):
            proof = await merkle.range_hashes(merkle.consistency_ranges(first, second), read)
            assert merkle.verify_consistency(
                first, second, roots[first - 1], roots[second - 1], proof
            ), (first, second)
            if proof:
                for i in range(len(proof)):
                    bad = [*proof]
                    bad[i] = bytes(32)
                    assert not merkle.verify_consistency(
                        first, second, roots[first - 1], roots[second - 1], bad
                    )
            if first < second:
                assert not merkle.verify_consistency(
                    first, second, bytes(32), roots[second - 1], proof
                )


@pytest.mark.parametrize(("start", "end"), [(0, 7), (8, 12), (16, 23), (4, 5), (0, 64)])
def test_ranges_decompose_into_aligned_perfect_subtrees(start: int, end: int) -> None:
    nodes = merkle.decompose(start, end)
    covered = []
    for level, index in nodes:
        covered += list(range(index << level, (index + 1) << level))
    assert covered == list(range(start, end))
