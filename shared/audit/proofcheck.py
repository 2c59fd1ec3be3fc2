"""Checking the proofs `GET /v1/log/proof` and `GET /v1/log/consistency` answer with,
trusting nothing in them: every hash is recomputed from the bytes, and the checkpoints'
signatures are checked against keys the caller pinned (the service's JWKS)."""

from __future__ import annotations

import msgspec

from shared.audit.findings import signature_ok
from shared.audit.merkle import leaf_hash, verify_consistency, verify_inclusion
from shared.chain import link
from shared.events.envelope import decode_envelope
from shared.events.log import CheckpointSealed, checkpoint_message


class SignedCheckpointDoc(msgspec.Struct):
    event_id: str
    position: int
    hash: str
    tree_size: int
    tree_root: str
    key_id: str
    event: msgspec.Raw


class InclusionDoc(msgspec.Struct):
    log: str
    partition: int
    position: int
    leaf_index: int
    hash: str
    leaf_hash: str
    event: msgspec.Raw
    checkpoint: SignedCheckpointDoc
    audit_path: list[str]


class ConsistencyDoc(msgspec.Struct):
    log: str
    partition: int
    first: SignedCheckpointDoc
    second: SignedCheckpointDoc
    proof: list[str]


def _hashes(values: list[str], problems: list[str]) -> list[bytes]:
    try:
        return [bytes.fromhex(v) for v in values]
    except ValueError:
        problems.append("a proof hash is not hex")
        return []


def check_checkpoint(
    doc: SignedCheckpointDoc, log: str, partition: int, keys: dict[str, str]
) -> list[str]:
    """What is wrong with a checkpoint as a proof's anchor (nothing: an empty list)."""
    problems: list[str] = []
    body = bytes(doc.event)
    try:
        env = decode_envelope(body)
        cp = msgspec.json.decode(bytes(env.data), type=CheckpointSealed)
    except msgspec.MsgspecError as exc:
        return [f"the checkpoint does not decode: {exc}"]
    if (env.log, env.partition, env.position) != (log, partition, doc.position):
        problems.append("the checkpoint belongs to another place in the log")
    if env.type != "CheckpointSealed":
        problems.append(f"the anchor is a {env.type}, not a checkpoint")
    try:
        if link(bytes.fromhex(env.prev_hash), body).hex() != doc.hash:
            problems.append("the checkpoint's bytes do not match its hash")
    except ValueError:
        problems.append("the checkpoint's prev_hash is not hex")
    if (cp.tree_size, cp.tree_root, cp.key_id) != (doc.tree_size, doc.tree_root, doc.key_id):
        problems.append("the proof's tree head is not the one the checkpoint holds")
    if env.position != cp.tree_size + 1:
        problems.append("the checkpoint does not follow the tree it covers")
    public = keys.get(cp.key_id)
    message = checkpoint_message(
        log, partition, cp.tree_size, cp.tree_root, cp.chain_head, cp.sealed_at
    )
    if public is None:
        problems.append(f"key {cp.key_id} is not among the service's published log keys")
    elif not signature_ok(public, cp.signature, message):
        problems.append(f"the checkpoint's signature does not verify with key {cp.key_id}")
    return problems


def check_inclusion(doc: InclusionDoc, keys: dict[str, str]) -> list[str]:
    problems = check_checkpoint(doc.checkpoint, doc.log, doc.partition, keys)
    body = bytes(doc.event)
    try:
        env = decode_envelope(body)
    except msgspec.MsgspecError as exc:
        return [*problems, f"the event does not decode: {exc}"]
    if (env.log, env.partition, env.position) != (doc.log, doc.partition, doc.position):
        problems.append("the event is not at the place the proof names")
    try:
        digest = link(bytes.fromhex(env.prev_hash), body)
    except ValueError:
        return [*problems, "the event's prev_hash is not hex"]
    if digest.hex() != doc.hash:
        problems.append("the event's bytes do not match its hash")
    leaf = leaf_hash(digest)
    if leaf.hex() != doc.leaf_hash or doc.leaf_index != doc.position - 1:
        problems.append("the leaf is not the event's")
    path = _hashes(doc.audit_path, problems)
    try:
        root = bytes.fromhex(doc.checkpoint.tree_root)
    except ValueError:
        return [*problems, "the tree root is not hex"]
    if not verify_inclusion(doc.leaf_index, doc.checkpoint.tree_size, leaf, path, root):
        problems.append("the audit path does not lead from the event to the signed tree head")
    return problems


def check_consistency(doc: ConsistencyDoc, keys: dict[str, str]) -> list[str]:
    problems = check_checkpoint(doc.first, doc.log, doc.partition, keys)
    problems += check_checkpoint(doc.second, doc.log, doc.partition, keys)
    proof = _hashes(doc.proof, problems)
    try:
        first, second = bytes.fromhex(doc.first.tree_root), bytes.fromhex(doc.second.tree_root)
    except ValueError:
        return [*problems, "a tree root is not hex"]
    if not verify_consistency(doc.first.tree_size, doc.second.tree_size, first, second, proof):
        problems.append("the proof does not show the first tree is a prefix of the second")
    return problems
