"""Refusals: the domain's reasons, what each SQLSTATE of the scan functions stands for, and
the problem catalogue generated from them."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta

import pytest

from services.redeemer.domain.refusals import REFUSED, RETRY, Retry, refusal
from shared.http.problems import CATALOGUE, STATUS, Problem
from shared.refusals import WORDS, Reason, Refusal

NOW = datetime(2026, 12, 2, 15, 30, tzinfo=UTC)  # 23:30 in Shanghai


@pytest.mark.parametrize(
    ("sqlstate", "reason"),
    [
        ("QM001", Reason.SCAN_LIMIT_REACHED),
        ("QM002", Reason.DAILY_LIMIT_REACHED),
        ("QM003", Reason.GROUP_FULL),
        ("QM011", Reason.CODE_REVOKED),
        ("QM012", Reason.CODE_SUPERSEDED),
        ("QM013", Reason.CODE_EXPIRED),
        ("QM014", Reason.CODE_NOT_ACTIVE),
    ],
)
def test_each_sqlstate_is_one_reason(sqlstate: str, reason: Reason) -> None:
    found = refusal(sqlstate, now=NOW, timezone="Asia/Shanghai", not_before=NOW)
    assert isinstance(found, Refusal)
    assert found.reason is reason
    assert REFUSED[sqlstate] is reason


def test_the_map_is_complete_and_one_to_one() -> None:
    assert len(set(REFUSED.values())) == len(REFUSED)
    assert not RETRY & REFUSED.keys()


@pytest.mark.parametrize(("sqlstate", "person"), [("QM004", False), ("QM005", True)])
def test_a_moved_token_or_person_is_a_retry_not_a_refusal(sqlstate: str, person: bool) -> None:
    found = refusal(sqlstate, now=NOW)
    assert isinstance(found, Retry)
    assert found.person_moved is person


@pytest.mark.parametrize("sqlstate", ["23505", "40001", "XX000", ""])
def test_any_other_error_is_not_mistaken_for_a_refusal(sqlstate: str) -> None:
    assert refusal(sqlstate, now=NOW) is None


def test_the_daily_cap_says_how_long_until_local_midnight() -> None:
    found = refusal("QM002", now=NOW, timezone="Asia/Shanghai")
    assert isinstance(found, Refusal)
    assert found.retry_after == 30 * 60
    elsewhere = refusal("QM002", now=NOW, timezone="America/New_York")  # 10:30 there
    assert isinstance(elsewhere, Refusal)
    assert elsewhere.retry_after == 13 * 3600 + 30 * 60


def test_a_scheduled_code_refused_in_sql_says_when_it_opens() -> None:
    found = refusal("QM014", now=NOW, not_before=NOW + timedelta(seconds=59))
    assert isinstance(found, Refusal)
    assert found.retry_after == 60


def test_every_reason_has_words_and_a_status_and_is_in_the_catalogue() -> None:
    for reason in Reason:
        assert reason in WORDS and reason in STATUS
        status, title, zh = CATALOGUE[reason.value]
        assert (status, title, zh) == (STATUS[reason], *WORDS[reason])
        assert 400 <= status < 500


@pytest.mark.parametrize(
    ("made", "status", "headers", "members"),
    [
        (Refusal(Reason.GROUP_FULL, "full"), 409, {}, {}),
        (
            Refusal(Reason.TOO_MANY_ATTEMPTS, "wait", retry_after=30),
            429,
            {"Retry-After": "30"},
            {},
        ),
        (
            Refusal(Reason.VERIFICATION_FAILED, "no", attempts_left=2, field=None),
            403,
            {},
            {"attempts_left": 2},
        ),
        (
            Refusal(Reason.CODE_EXPIRED, "gone").adding(fallback_url="https://x.example/"),
            410,
            {},
            {"fallback_url": "https://x.example/"},
        ),
    ],
)
def test_a_refusal_becomes_its_problem(
    made: Refusal, status: int, headers: dict[str, str], members: dict[str, object]
) -> None:
    problem = Problem.of(made)
    assert (problem.code, problem.status, problem.headers) == (made.reason.value, status, headers)
    body = problem.body()
    assert body["detail"] == made.detail and body["message_zh"] == WORDS[made.reason][1]
    assert {k: body[k] for k in members} == members


def test_a_refusal_survives_a_copy_with_its_members() -> None:
    made = Refusal(Reason.TOO_MANY_ATTEMPTS, "wait", retry_after=5, attempts_left=0)
    copied = pickle.loads(pickle.dumps(made))
    assert (copied.reason, copied.detail, copied.retry_after, copied.extra) == (
        made.reason,
        made.detail,
        5,
        {"attempts_left": 0},
    )
