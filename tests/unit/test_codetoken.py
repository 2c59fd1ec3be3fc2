"""The QR token: format, Ed25519 signature, and what a tampered token looks like."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import pytest

from shared import codetoken
from shared.crypto.kek import Kek, KekError
from shared.crypto.signing import SigningKey, b64url, unb64url


def test_token_round_trips_and_verifies() -> None:
    key = SigningKey.generate()
    code_id = uuid.uuid4()
    expires = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
    token = codetoken.issue(code_id, expires, key)
    parsed = codetoken.parse(token)
    assert parsed.code_id == code_id
    assert parsed.key_id == key.key_id
    assert parsed.expires_at == expires
    assert parsed.verify(key.public_b64)
    assert len(unb64url(token)) == codetoken.LENGTH


def test_permanent_code_has_no_expiry() -> None:
    key = SigningKey.generate()
    assert codetoken.parse(codetoken.issue(uuid.uuid4(), None, key)).expires_at is None


@pytest.mark.parametrize("index", [0 + 1, 5, 20, 30, 40, 90])
def test_any_flipped_byte_fails(index: int) -> None:
    key = SigningKey.generate()
    raw = bytearray(unb64url(codetoken.issue(uuid.uuid4(), None, key)))
    raw[index] ^= 0x01
    try:
        parsed = codetoken.parse(b64url(bytes(raw)))
    except codetoken.InvalidToken:
        return  # a broken header is refused outright
    assert not parsed.verify(key.public_b64)


def test_another_key_does_not_verify() -> None:
    token = codetoken.parse(codetoken.issue(uuid.uuid4(), None, SigningKey.generate()))
    assert not token.verify(SigningKey.generate().public_b64)


@pytest.mark.parametrize("bad", ["", "abc", "!!!!", "A" * 300, b64url(b"\x03" + bytes(96))])
def test_malformed_tokens_are_refused(bad: str) -> None:
    with pytest.raises(codetoken.InvalidToken):
        codetoken.parse(bad)


def test_payload_is_url_and_token_comes_back_out() -> None:
    url = codetoken.payload_url("https://q.example.com/", "TOKEN")
    assert url == "https://q.example.com/j/TOKEN"
    assert codetoken.token_from_payload(url) == "TOKEN"
    assert codetoken.token_from_payload(url + "?utm=x") == "TOKEN"
    assert codetoken.token_from_payload("TOKEN") == "TOKEN"


def test_private_keys_are_sealed_under_the_kek() -> None:
    kek = Kek.from_text(Kek.generate_text())
    key = SigningKey.generate()
    sealed = key.seal(kek)
    assert key.public_b64.encode() not in sealed
    opened = SigningKey.open(key.key_id, sealed, kek)
    assert opened.public_b64 == key.public_b64
    with pytest.raises(KekError):
        SigningKey.open(key.key_id, sealed, Kek.from_text(Kek.generate_text()))
    with pytest.raises(KekError):
        SigningKey.open("ffffffffffffffff", sealed, kek)  # bound to its key id


def test_kek_must_be_32_bytes() -> None:
    with pytest.raises(KekError):
        Kek.from_text(b64url(b"short"))


@pytest.mark.parametrize("spelling", ["padded", "other alphabet", "unused bits"])
def test_only_the_canonical_spelling_is_a_token(spelling: str) -> None:
    key = SigningKey.generate()
    token = codetoken.issue(uuid.uuid4(), None, key)
    while spelling == "other alphabet" and not {"-", "_"} & set(token):
        token = codetoken.issue(uuid.uuid4(), None, key)  # one that base64's +/ would differ in
    assert codetoken.parse(token).key_id == key.key_id
    if spelling == "padded":
        other = token + "==="
    elif spelling == "other alphabet":
        other = base64.b64encode(unb64url(token)).decode().rstrip("=")
    else:
        # 97 bytes: the last character carries 4 unused bits; setting one decodes the same
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        last = alphabet.index(token[-1])
        other = token[:-1] + alphabet[last | 1 if last % 2 == 0 else last & ~1]
        assert unb64url(other) == unb64url(token)
    with pytest.raises(codetoken.InvalidToken):
        codetoken.parse(other)
