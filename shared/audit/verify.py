"""Replaying one partition of a log: recompute every hash and find the first thing wrong.

`PartitionCheck` is fed the partition's records in the order the log holds them (Kafka
offset order, or an export's line order) and stops at the first problem, which it names
by position and kind:

- **edited**: a record's bytes are not the ones the chain (or the hash the relay sent with
  it) says; or the log before a checkpoint is not the one the checkpoint signed;
- **dropped**: a position is missing and does not come later;
- **reordered**: a position is missing here and comes later;
- **duplicated**: a position comes a second time (with `tolerate_duplicates`, an exact
  re-delivery is accepted and counted: a run sent again through the head, as a restarted
  relay sends it, or records that came *early*, before a republished log began, each
  matched byte for byte by the record at its place: what a relay publishing into a broker
  that had just been wiped leaves);
- **forged checkpoint**: a checkpoint whose signature does not verify with a key this log
  trusts (shared/audit/keys.py);
- **truncated**: the log ends before the producer's head, or with events older than any
  checkpoint could be (the relay covers every event within `checkpoint_seconds`).

Memory per partition is constant: the chain head, the Merkle frontier (one hash per level)
and a window of the last hashes, to tell an exact duplicate from a different record.
Checkpoint signatures are checked here when the log's keys are known in advance (a pinned
JWKS), else handed back as claims for `keys.Trust` to check once every key is read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import msgspec

from shared.audit.findings import (
    DUPLICATED,
    EDITED,
    FORGED,
    REORDERED,
    CheckpointClaim,
    Item,
    KeyClaim,
    forged_detail,
)
from shared.audit.light import (
    LEAF,
    NODE,
    SPECIAL,
    Light,
    checkpoint_body,
    key_body,
    light,
    own_hash,
    sha256,
    tree_root,
)
from shared.audit.partition import LOOKAHEAD, PartitionState
from shared.events.log import checkpoint_message


@dataclass
class PartitionCheck(PartitionState):
    """Fed the partition's records in log order; stops at the first finding."""

    def feed(self, items: Iterable[Item]) -> None:
        """Check records in log order; stops at the first finding.

        The usual record (the next position, linking to the head, an ordinary event) takes
        the fast path below, on local variables; anything else goes through `_one`, which
        knows every case, and the fast path resumes after it."""
        if self.finding is not None:
            return
        log, partition = self.log, self.partition
        push, pop, recent_append = self._stack.append, self._stack.pop, self._recent.append
        decode, digest_of, leaf, node = light.decode, sha256, LEAF.copy, NODE.copy
        expected, head = self.position + 1, self.head
        head_hex, uncovered = head.hex(), self.uncovered_since
        usual = self._missing is None and self._replay_until is None and not self._early
        count = 0
        for item in items:
            body, _, claimed = item
            if usual:
                try:
                    env = decode(body)
                except msgspec.DecodeError:
                    pass
                else:
                    if (
                        env.position == expected
                        and env.prev_hash == head_hex
                        and env.type not in SPECIAL
                        and env.log == log
                        and env.partition == partition
                    ):
                        digest = digest_of(head + body).digest()
                        if claimed is None or digest == claimed:
                            h = leaf()
                            h.update(digest)
                            push(h.digest())
                            k = expected
                            while not k & 1:
                                h = node()
                                right = pop()
                                h.update(pop() + right)
                                push(h.digest())
                                k >>= 1
                            recent_append(digest)
                            if uncovered is None:
                                uncovered = env.occurred_at
                            head, head_hex = digest, digest.hex()
                            expected += 1
                            count += 1
                            continue
            self.events += count
            count = 0
            self.position, self.head, self.uncovered_since = expected - 1, head, uncovered
            self._one(item)
            if self.finding is not None:
                return
            expected, head = self.position + 1, self.head
            head_hex, uncovered = head.hex(), self.uncovered_since
            usual = self._missing is None and self._replay_until is None and not self._early
        self.events += count
        self.position, self.head, self.uncovered_since = expected - 1, head, uncovered

    def _one(self, item: Item) -> None:
        """One record, whatever it is."""
        log, partition = self.log, self.partition
        stack, recent = self._stack, self._recent
        body, where, claimed = item
        self.events += 1
        if self._missing is not None:
            self._look_for_missing(body, where, claimed)
            return
        try:
            env = light.decode(body)
        except msgspec.DecodeError as exc:
            self._stop(self.position + 1, EDITED, f"the record is not an envelope: {exc}", where)
            return
        if env.log != log or env.partition != partition:
            self._stop(
                self.position + 1,
                EDITED,
                f"a record of {env.log}[{env.partition}] position {env.position} is here",
                where,
            )
            return
        position = env.position
        expected = self.position + 1
        if position != expected and expected in self._early:
            # The record that came early was this position's only copy: not a republish
            # after all, but records moved (swapped) in the log.
            missing, found = self._early_missing
            self._stop(
                missing,
                REORDERED,
                f"position {missing} comes later in the log, at {self.where_kind} {found}",
                self._early_span[2],
            )
            return
        if position != expected or self._replay_until is not None:
            self._out_of_line(env, body, where, claimed)
            return
        head = self.head
        if env.prev_hash != head.hex():
            if claimed is not None and own_hash(env, body) != claimed:
                self._stop(position, EDITED, "its bytes do not match its hash", where)
            else:
                self._stop(
                    position - 1,
                    EDITED,
                    f"position {position} links to a different record than the one here",
                    where,
                )
            return
        digest = sha256(head + body).digest()
        if claimed is not None and digest != claimed:
            self._stop(position, EDITED, "its bytes do not match its hash", where)
            return
        if self._early:
            early = self._early.pop(position, None)
            if early is not None:
                if early[0] != digest:
                    self._stop(
                        position,
                        EDITED,
                        f"the record that came early for position {position} (at "
                        f"{self.where_kind} {early[1]}) is not the one at its place",
                        where,
                    )
                    return
                if not self._early and not self.tolerate_duplicates:
                    first, last, at = self._early_span
                    self._stop(
                        first,
                        DUPLICATED,
                        f"positions {first}–{last} came early, from {self.where_kind} {at}, "
                        "as exact copies of the records at their places (a relay published "
                        "into a wiped broker before it republished the log; "
                        "--tolerate-duplicates accepts them)",
                        at,
                    )
                    return
                self.duplicates_tolerated += 1
        if env.type == "CheckpointSealed":
            self._checkpoint(env, body, where)
            if self.finding is not None:
                return
        elif env.type == "LogKeyAdded":
            announced = key_body.decode(body)
            self.keys.append(
                KeyClaim(log, partition, position, announced.stream_id, announced.data)
            )
        if self.uncovered_since is None and env.type != "CheckpointSealed":
            self.uncovered_since = env.occurred_at
        # The leaf, and every perfect subtree it completes.
        h = LEAF.copy()
        h.update(digest)
        stack.append(h.digest())
        k = position
        while not k & 1:
            right = stack.pop()
            h = NODE.copy()
            h.update(stack.pop())
            h.update(right)
            stack.append(h.digest())
            k >>= 1
        recent.append(digest)
        self.position = position
        self.head = digest

    def _checkpoint(self, env: Light, body: bytes, where: int) -> None:
        cp = checkpoint_body.decode(body).data
        position = env.position
        since = self.last_checkpoint + 1
        if (
            cp.tree_size != position - 1
            or cp.chain_head != self.head.hex()
            or cp.tree_root != tree_root(self._stack).hex()
        ):
            self._stop(
                position,
                EDITED,
                f"the log before this checkpoint is not the one it signed: positions "
                f"{since}–{position - 1} were changed",
                where,
            )
            return
        message = checkpoint_message(
            self.log, self.partition, cp.tree_size, cp.tree_root, cp.chain_head, cp.sealed_at
        )
        if self.check_signature is not None:
            if not self.check_signature(cp.key_id, cp.signature, message):
                self._stop(position, FORGED, forged_detail(cp.key_id), where)
                return
        else:
            self.claims.append(
                CheckpointClaim(
                    self.log, self.partition, position, cp.key_id, cp.signature, message
                )
            )
        self.checkpoints += 1
        self.last_checkpoint = position
        self.last_tree_root = cp.tree_root
        self.uncovered_since = None

    def _out_of_line(self, env: Light, body: bytes, where: int, claimed: bytes | None) -> None:
        position, expected = env.position, self.position + 1
        own = own_hash(env, body)
        if claimed is not None and own != claimed:
            self._stop(min(position, expected), EDITED, "its bytes do not match its hash", where)
            return
        if self._replay_until is not None:
            # Checking a re-delivery: the positions come again in order, byte for byte,
            # through the head (the relay re-sends from its last mark onwards).
            if position == self._replay_next and self._hash_at(position) == own:
                self.duplicates_tolerated += 1
                self._replay_next += 1
                if position == self._replay_until:
                    self._replay_until = None
                return
            self._stop(
                position,
                DUPLICATED,
                f"a re-delivery stops at position {self._replay_next - 1}; position {position} "
                "follows",
                where,
            )
            return
        if position < expected:
            original = self._hash_at(position)
            if original is None:
                self._stop(
                    position,
                    DUPLICATED,
                    f"position {position} comes again, after {self.position}",
                    where,
                )
            elif original != own:
                self._stop(
                    position,
                    EDITED,
                    f"a second, different record for position {position} comes after "
                    f"{self.position}",
                    where,
                )
            elif self.tolerate_duplicates:
                # The relay re-sends what it published before a crash: accept an exact
                # repeat of a run that ends at the head, as any consumer skips it.
                self.duplicates_tolerated += 1
                self._replay_from, self._replay_next = position, position + 1
                self._replay_until = self.position if position < self.position else None
            else:
                self._stop(
                    position,
                    DUPLICATED,
                    f"an exact copy of position {position} comes again after {self.position}",
                    where,
                )
            return
        # A position further on: the expected one was dropped, or comes later (reordered),
        # or what comes here came early and will come again at its place.
        self._missing, self._missing_since, self._missing_where = expected, 0, where
        self._seen_early = {}
        self._look_for_missing(body, where, claimed)

    def _look_for_missing(self, body: bytes, where: int, claimed: bytes | None = None) -> None:
        assert self._missing is not None
        try:
            env = light.decode(body)
        except msgspec.DecodeError:
            env = None
        position = env.position if env is not None else -1
        if position == self._missing:
            early = self._seen_early
            if early and all(p > self._missing for p in early):
                # Records came early (a relay that published into a broker wiped a moment
                # before it republished the log): a re-delivery once each proves to be the
                # record at its place, byte for byte; until then, they are only suspects.
                self._early_span = (min(early), max(early), self._missing_where)
                self._early_missing = (self._missing, where)
                self._early, self._seen_early, self._missing = early, {}, None
                self.events -= 1  # counted again by _one
                self._one((body, where, claimed))
                return
            self._stop(
                self._missing,
                REORDERED,
                f"position {self._missing} comes later in the log, at {self.where_kind} "
                f"{where}" + (" (the records before it came early)" if early else ""),
                self._missing_where,
            )
            return
        if env is not None and len(self._seen_early) < LOOKAHEAD:
            self._seen_early.setdefault(position, (own_hash(env, body), where))
        self._missing_since += 1
        if self._missing_since > LOOKAHEAD:
            self._dropped()
