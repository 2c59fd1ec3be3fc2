"""Merkle trees over a partition's events, as RFC 9162 (Certificate Transparency 2.0) defines.

The leaves are the events in position order; a leaf's data is the event's chain hash (which
already covers its bytes and everything before it), so

    leaf(e)      = SHA-256(0x00 ‖ chain_hash(e))
    node(l, r)   = SHA-256(0x01 ‖ l ‖ r)
    MTH(D[n])    = node(MTH(D[0:k]), MTH(D[k:n])),  k the largest power of two below n

A tree of n leaves is the perfect subtrees of n's binary decomposition, largest first (the
"frontier"); its root folds them from the right. Every perfect subtree the log ever formed
is stored, so any range a proof needs is a few stored nodes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence

# (level, index): the perfect subtree over leaves [index·2^level, (index+1)·2^level)
Node = tuple[int, int]


def leaf_hash(chain_hash: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + chain_hash).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


EMPTY_ROOT = hashlib.sha256(b"").digest()


class Frontier:
    """The right edge of a growing tree: (level, hash) of each perfect subtree, largest first."""

    def __init__(self, size: int = 0, nodes: Sequence[tuple[int, bytes]] = ()) -> None:
        self.size = size
        self.nodes = list(nodes)

    def append(self, leaf: bytes) -> list[tuple[Node, bytes]]:
        """Add a leaf; returns every perfect subtree this completes (the leaf included)."""
        index = self.size
        made: list[tuple[Node, bytes]] = [((0, index), leaf)]
        self.nodes.append((0, leaf))
        self.size += 1
        level = 0
        while len(self.nodes) >= 2 and self.nodes[-1][0] == self.nodes[-2][0]:
            (_, right), (_, left) = self.nodes.pop(), self.nodes.pop()
            level += 1
            merged = node_hash(left, right)
            self.nodes.append((level, merged))
            made.append(((level, (index + 1 >> level) - 1), merged))
        return made

    def root(self) -> bytes:
        if not self.nodes:
            return EMPTY_ROOT
        acc = self.nodes[-1][1]
        for _, h in reversed(self.nodes[:-1]):
            acc = node_hash(h, acc)
        return acc


def _split(n: int) -> int:
    """The largest power of two strictly below n (n ≥ 2)."""
    return 1 << (n - 1).bit_length() - 1


def decompose(start: int, end: int) -> list[Node]:
    """The aligned perfect subtrees making up [start, end), largest first. Every range a
    proof asks for starts at a multiple of its own left split, so this is always exact."""
    nodes: list[Node] = []
    offset, size = start, end - start
    while size:
        level = size.bit_length() - 1
        width = 1 << level
        assert offset % width == 0, (start, end)
        nodes.append((level, offset >> level))
        offset += width
        size -= width
    return nodes


def fold(hashes: Sequence[bytes]) -> bytes:
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """RFC 9162 PATH(index, D[size]) as the leaf ranges whose roots form the audit path."""
    ranges: list[tuple[int, int]] = []
    offset = 0
    while size > 1:
        k = _split(size)
        if index < k:
            ranges.append((offset + k, offset + size))
            size = k
        else:
            ranges.append((offset, offset + k))
            offset, index, size = offset + k, index - k, size - k
    return list(reversed(ranges))


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """RFC 9162 PROOF(first, D[second]) as leaf ranges (first ≤ second)."""
    out: list[tuple[int, int]] = []

    def subproof(m: int, start: int, n: int, complete: bool) -> None:
        if m == n:
            if not complete:
                out.append((start, start + n))
            return
        k = _split(n)
        if m <= k:
            subproof(m, start, k, complete)
            out.append((start + k, start + n))
        else:
            subproof(m - k, start + k, n - k, False)
            out.append((start, start + k))

    if 0 < first < second:
        subproof(first, 0, second, True)
    return out


NodeReader = Callable[[list[Node]], Awaitable[dict[Node, bytes]]]


async def range_hashes(ranges: list[tuple[int, int]], read: NodeReader) -> list[bytes]:
    """The root of each range, reading every stored node they need in one call."""
    plans = [decompose(a, b) for a, b in ranges]
    stored = await read(sorted({n for plan in plans for n in plan}))
    return [fold([stored[n] for n in plan]) for plan in plans]


def verify_inclusion(
    index: int, size: int, leaf: bytes, path: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2."""
    if first > second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:  # a power of two: the old root is itself a node of the path
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root
