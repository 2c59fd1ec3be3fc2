"""What an attacker with write access to an export or a broker can do to a log, done for
real: edit bytes, drop, swap, duplicate, truncate, re-chain after an edit (so every hash
after it is consistent again), re-sign checkpoints with a key of their own."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import msgspec

from shared.audit.merkle import Frontier, leaf_hash
from shared.audit.sources import export_line
from shared.chain import GENESIS, link
from shared.crypto.signing import SigningKey, b64url
from shared.events.envelope import Envelope, canonical_bytes, decode_envelope
from shared.events.log import CheckpointSealed, LogKeyAdded, checkpoint_message


@dataclass(frozen=True)
class Rec:
    log: str
    partition: int
    offset: int
    hash: str
    body: bytes

    @property
    def envelope(self) -> Envelope:
        return decode_envelope(self.body)


class _Line(msgspec.Struct):
    log: str
    partition: int
    offset: int
    hash: str
    event: msgspec.Raw


@dataclass
class Export:
    header: bytes
    records: list[Rec]

    @classmethod
    def load(cls, path: Path) -> Export:
        lines = path.read_bytes().splitlines()
        records = []
        for raw in lines[1:]:
            line = msgspec.json.decode(raw, type=_Line)
            records.append(Rec(line.log, line.partition, line.offset, line.hash, bytes(line.event)))
        return cls(lines[0], records)

    def save(self, path: Path) -> Path:
        with path.open("wb") as f:
            f.write(self.header + b"\n")
            for r in self.records:
                f.write(export_line(r.log, r.partition, r.offset, r.hash, r.body))
        return path

    def copy(self) -> Export:
        return Export(self.header, list(self.records))

    def indexes(self, log: str, partition: int) -> list[int]:
        """Where a partition's records are in the file, in order."""
        return [i for i, r in enumerate(self.records) if (r.log, r.partition) == (log, partition)]

    def partitions(self) -> list[tuple[str, int]]:
        return sorted({(r.log, r.partition) for r in self.records})


def position(rec: Rec) -> int:
    return rec.envelope.position


def flip_byte(rec: Rec) -> Rec:
    """One character of the event's data changed; the hash the relay sent is left alone."""
    body = rec.body
    at = body.index(b'"data":{') + len(b'"data":{') + 3
    changed = body[:at] + bytes([body[at] ^ 0x01]) + body[at + 1 :]
    return replace(rec, body=changed)


def with_data(rec: Rec, **changes: object) -> Rec:
    env = rec.envelope
    data = msgspec.json.decode(bytes(env.data))
    data.update(changes)
    raw = msgspec.json.Encoder(order="sorted").encode(data)
    return replace(rec, body=canonical_bytes(msgspec.structs.replace(env, data=msgspec.Raw(raw))))


def rechain(records: list[Rec], key: SigningKey | None = None) -> list[Rec]:
    """One partition's records, in order, made consistent again: positions 1…n, every
    prev_hash and hash recomputed, and (with `key`) every checkpoint's tree head recomputed
    and signed by `key`."""
    out: list[Rec] = []
    prev, tree = GENESIS, Frontier()
    for number, rec in enumerate(records, start=1):
        env = rec.envelope
        if key is not None and env.type == "CheckpointSealed":
            cp = msgspec.json.decode(bytes(env.data), type=CheckpointSealed)
            tree_root = tree.root().hex()
            message = checkpoint_message(
                env.log, env.partition, number - 1, tree_root, prev.hex(), cp.sealed_at
            )
            signed = msgspec.structs.replace(
                cp,
                tree_size=number - 1,
                tree_root=tree_root,
                chain_head=prev.hex(),
                key_id=key.key_id,
                signature=b64url(key.sign(message)),
            )
            env = msgspec.structs.replace(
                env, data=msgspec.Raw(msgspec.json.Encoder(order="sorted").encode(signed))
            )
        env = msgspec.structs.replace(env, position=number, prev_hash=prev.hex())
        body = canonical_bytes(env)
        digest = link(prev, body)
        tree.append(leaf_hash(digest))
        out.append(replace(rec, body=body, hash=digest.hex()))
        prev = digest
    return out


def replaced_key(rec: Rec, key: SigningKey) -> Rec:
    """A LogKeyAdded whose public key is the attacker's, under the same key id."""
    env = rec.envelope
    announced = msgspec.json.decode(bytes(env.data), type=LogKeyAdded)
    assert announced.key_id
    swapped = LogKeyAdded(
        key_id=announced.key_id,
        service=announced.service,
        algorithm=announced.algorithm,
        public_key=key.public_b64,
    )
    raw = msgspec.json.Encoder(order="sorted").encode(swapped)
    return replace(rec, body=canonical_bytes(msgspec.structs.replace(env, data=msgspec.Raw(raw))))
