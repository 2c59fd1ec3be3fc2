"""What a check of one partition holds while it reads (shared/audit/verify.py reads), and
how it ends: the chain head and Merkle frontier, the window of recent hashes, what it is
searching for, and at the end of the partition, what was searched for and never came.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from shared.audit.findings import (
    DROPPED,
    DUPLICATED,
    REORDERED,
    TRUNCATED,
    CheckpointClaim,
    Finding,
    KeyClaim,
    SignatureCheck,
)
from shared.chain import GENESIS

WINDOW = 4096  # recent hashes kept, to recognise an exact duplicate
LOOKAHEAD = 10_000  # records searched for a missing position before calling it dropped


@dataclass
class PartitionState:
    log: str
    partition: int
    tolerate_duplicates: bool = False
    check_signature: SignatureCheck | None = None
    where_kind: str = "offset"  # what `where` numbers: "offset" or "line"

    position: int = 0
    head: bytes = GENESIS
    events: int = 0  # records read, duplicates included
    duplicates_tolerated: int = 0
    checkpoints: int = 0
    last_checkpoint: int = 0  # its position
    last_tree_root: str | None = None
    uncovered_since: str | None = None  # occurred_at of the first event after it
    finding: Finding | None = None
    claims: list[CheckpointClaim] = field(default_factory=list)
    keys: list[KeyClaim] = field(default_factory=list)
    _stack: list[bytes] = field(default_factory=list)
    _recent: deque[bytes] = field(default_factory=lambda: deque(maxlen=WINDOW))
    _missing: int | None = None  # a position not found where it belonged
    _missing_since: int = 0
    _missing_where: int | None = None
    _replay_until: int | None = None  # re-delivery being checked, through this position
    _replay_next: int = 0
    _replay_from: int = 0
    # Records seen while a position was missing: position -> (own hash, where), checked
    # against the records at their places once the missing one came.
    _seen_early: dict[int, tuple[bytes | None, int]] = field(default_factory=dict)
    _early: dict[int, tuple[bytes | None, int]] = field(default_factory=dict)
    _early_span: tuple[int, int, int | None] = (0, 0, None)
    _early_missing: tuple[int, int] = (0, 0)  # the position that was missing, where it came

    @property
    def done(self) -> bool:
        return self.finding is not None

    def _stop(self, position: int, kind: str, detail: str, where: int | None) -> None:
        self.finding = Finding(
            self.log,
            self.partition,
            position,
            kind,
            detail,
            None if where is None else f"{self.where_kind} {where}",
        )

    def _hash_at(self, position: int) -> bytes | None:
        back = self.position - position
        if 0 <= back < len(self._recent):
            return self._recent[-1 - back]
        return None

    def _dropped(self) -> None:
        assert self._missing is not None
        self._stop(
            self._missing,
            DROPPED,
            f"position {self._missing} is missing: the next record is a later position",
            self._missing_where,
        )

    def finish(
        self,
        now: datetime,
        checkpoint_seconds: float,
        grace: float,
        producer_position: int | None = None,
    ) -> None:
        """The end of the partition: what was searched for is not coming, and the tail
        must be covered by a checkpoint unless it is younger than the relay's period."""
        if self.finding is not None:
            return
        if self._missing is not None:
            self._dropped()
            return
        if self._replay_until is not None:
            self._stop(
                self._replay_from,
                DUPLICATED,
                f"position {self._replay_from} comes again, but the log ends before a "
                f"re-delivery could reach its head ({self._replay_until})",
                None,
            )
            return
        if self._early:
            # Not a republish after all: the missing position was moved later.
            missing, found = self._early_missing
            self._stop(
                missing,
                REORDERED,
                f"position {missing} comes later in the log, at {self.where_kind} {found}",
                self._early_span[2],
            )
            return
        if producer_position is not None and producer_position > self.position:
            self._stop(
                self.position + 1,
                TRUNCATED,
                f"the producer has published up to position {producer_position}; the log "
                f"ends at {self.position}",
                None,
            )
            return
        if self.uncovered_since is not None:
            first = datetime.fromisoformat(self.uncovered_since.replace("Z", "+00:00"))
            age = (now - first).total_seconds()
            if age > checkpoint_seconds + grace:
                self._stop(
                    self.position + 1,
                    TRUNCATED,
                    f"positions {self.last_checkpoint + 1}–{self.position} have waited "
                    f"{age:.0f} s for a checkpoint that comes within {checkpoint_seconds:g} s: "
                    "the log ends early",
                    None,
                )
