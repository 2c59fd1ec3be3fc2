"""How the redeemer names people it no longer knows."""

from __future__ import annotations

ERASED = "erased:"  # an erased person's memberships go by "erased:{person}"


def erased(person: str) -> str:
    return ERASED + person
