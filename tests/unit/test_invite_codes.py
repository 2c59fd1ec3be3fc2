"""Invite codes: keyed hashes that the log cannot be searched for, the older plain hashes
still accepted, and answers compared without regard to case."""

from __future__ import annotations

import hashlib
import uuid

from shared.rules.invite_codes import (
    ALPHABET,
    invite_code_hash,
    invite_code_matches,
    key_id,
    new_invite_code,
)

SECRET = b"s" * 32
CODE_ID = uuid.UUID(int=7)


def test_the_hash_is_keyed_and_names_its_key() -> None:
    stored = invite_code_hash(SECRET, CODE_ID, "AB12CD34")
    scheme, kid, mac = stored.split(":")
    assert (scheme, kid) == ("hmac-sha256", key_id(SECRET)) and len(mac) == 64
    assert invite_code_hash(b"t" * 32, CODE_ID, "AB12CD34") != stored  # another secret
    assert hashlib.sha256(CODE_ID.bytes + b"AB12CD34").hexdigest() != mac


def test_answers_match_whatever_their_case_and_spaces() -> None:
    stored = invite_code_hash(SECRET, CODE_ID, "Ab12Cd34")
    for answer in ("AB12CD34", "ab12cd34", "  ab12CD34 "):
        assert invite_code_matches(SECRET, CODE_ID, answer, stored)
    assert not invite_code_matches(SECRET, CODE_ID, "AB12CD35", stored)
    assert not invite_code_matches(SECRET, uuid.UUID(int=8), "AB12CD34", stored)
    assert not invite_code_matches(SECRET, CODE_ID, "AB12CD34", None)


def test_codes_issued_before_keyed_hashes_still_verify() -> None:
    legacy = hashlib.sha256(CODE_ID.bytes + b"123456").hexdigest()
    assert invite_code_matches(SECRET, CODE_ID, " 123456 ", legacy)
    assert not invite_code_matches(SECRET, CODE_ID, "123457", legacy)


def test_generated_codes_are_long_and_unambiguous() -> None:
    made = {new_invite_code() for _ in range(200)}
    assert len(made) == 200
    assert all(len(c) == 8 and set(c) <= set(ALPHABET) for c in made)
    assert not set("01OIL") & set(ALPHABET)
