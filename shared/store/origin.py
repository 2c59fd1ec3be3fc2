"""Which records on a topic are the producer's: batch signatures over the hash chain.

The topic is not a trust boundary: whoever may produce to it can write a record whose
`prev_hash` links and whose hash header matches, since the chain hash is unkeyed. So the
relay signs the last record of every batch it publishes to a partition (and every 200th of
a long one) with its log key (headers `sig` and `kid`, over `batch_message`), and a follower
applies a record only when it lies on the chain that ends at a record with a valid
signature. A few Ed25519 signatures per publish, one verification per fetch: the chain does
the rest.

`settle` is the pure part: given the records waiting in one partition, the newest valid
signature and the chain it covers, it says what to apply, what is a known duplicate, what
is not the producer's, and what must still wait.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from shared.chain import link
from shared.crypto.signing import SigningKey, b64url, unb64url, verify
from shared.events import Envelope
from shared.events.log import batch_message

log = logging.getLogger(__name__)

SIG, KID = "sig", "kid"


def batch_headers(
    key: SigningKey, log_name: str, partition: int, position: int, chain_hash: bytes
) -> list[tuple[str, bytes]]:
    """The headers the relay adds to a batch's last record."""
    signature = key.sign(batch_message(log_name, partition, position, chain_hash.hex()))
    return [(SIG, b64url(signature).encode()), (KID, key.key_id.encode())]


@dataclass(frozen=True)
class Item:
    """A decoded record from the topic, with the chain hash its bytes give."""

    envelope: Envelope
    body: bytes
    digest: bytes  # link(prev_hash, body): what the next record's prev_hash must be
    offset: int | None  # the Kafka offset; None when it came from the log API
    signature: bytes | None = None
    key_id: str | None = None

    @property
    def position(self) -> int:
        return self.envelope.position


def item_of(envelope: Envelope, body: bytes, offset: int | None, headers: dict[str, bytes]) -> Item:
    signature: bytes | None = None
    if SIG in headers:
        try:
            signature = unb64url(headers[SIG].decode())
        except (ValueError, UnicodeDecodeError):
            signature = b""  # present but unreadable: never valid
    kid = headers.get(KID)
    return Item(
        envelope,
        body,
        link(bytes.fromhex(envelope.prev_hash), body),
        offset,
        signature,
        kid.decode(errors="replace") if kid is not None else None,
    )


class LogKeys:
    """The producer's log keys (key id → public key), to be asked for again when a
    signature names a key not known yet, at most once per `refresh_every` seconds."""

    def __init__(self, refresh_every: float = 1.0) -> None:
        self._keys: dict[str, str] = {}
        self._refresh_every = refresh_every
        self._fetched_at = float("-inf")

    def known(self) -> dict[str, str]:
        return self._keys

    def update(self, keys: dict[str, str]) -> None:
        self._keys.update(keys)
        self._fetched_at = time.monotonic()

    def due(self, key_id: str) -> bool:
        """Whether to ask the producer for its keys before judging a signature by `key_id`."""
        return (
            key_id not in self._keys and time.monotonic() - self._fetched_at >= self._refresh_every
        )

    def valid(self, log_name: str, partition: int, item: Item) -> bool:
        public = self._keys.get(item.key_id or "")
        if public is None or not item.signature:
            return False
        message = batch_message(log_name, partition, item.position, item.digest.hex())
        return verify(public, item.signature, message)


@dataclass
class Settled:
    """What one partition's waiting records come to."""

    apply: list[Item] = field(default_factory=list)  # the producer's, after `position`, in order
    lowest: int | None = None  # the first position the signed chain covers
    duplicates: int = 0  # the producer's, already applied (or identical copies of those)
    # at a position the signed chain covers, but not on it: another record is the producer's
    not_the_producers: list[Item] = field(default_factory=list)
    # before the signed chain begins (a record between them is missing): judged once the
    # follower holds the producer's records of those positions
    uncovered: list[Item] = field(default_factory=list)
    waiting: list[Item] = field(default_factory=list)  # after the newest signature
    signed_at: int | None = None


def settle(
    items: Sequence[Item],
    position: int,
    signed: Callable[[Item], bool],
    trusted: Sequence[Item] = (),
) -> Settled:
    """Walk back along `prev_hash` from the newest record with a valid signature, and from
    each `trusted` one (read from the producer's log API): what the walks reach is the
    producer's. `position` is what the follower has applied."""
    result = Settled()
    anchor: Item | None = None
    for item in reversed(items):
        if item.signature is not None and signed(item):
            anchor = item
            break
    if anchor is None:
        result.waiting = list(items)
        return result
    result.signed_at = anchor.position
    everything = [*items, *trusted]
    by_digest: dict[bytes, Item] = {}
    for item in everything:
        by_digest.setdefault(item.digest, item)
    chain: dict[int, Item] = {}
    for start in (anchor, *trusted):
        current: Item | None = start
        while current is not None and current.position not in chain:
            chain[current.position] = current
            before = by_digest.get(bytes.fromhex(current.envelope.prev_hash))
            linked = before is not None and before.position == current.position - 1
            current = before if linked else None
    result.lowest = min(p for p in chain if p <= anchor.position)
    on_chain = {item.digest for item in chain.values()}
    seen: set[bytes] = set()
    for item in items:
        if item.position > anchor.position:
            result.waiting.append(item)
        elif item.digest in on_chain:
            if item.position <= position or item.digest in seen:
                result.duplicates += 1
            seen.add(item.digest)
        elif item.position < result.lowest:
            result.uncovered.append(item)
        else:
            result.not_the_producers.append(item)
    result.apply = [chain[p] for p in sorted(chain) if position < p <= anchor.position]
    return result
