"""Live-code routing (services/redeemer/domain/routing.py): the order candidates are tried in."""

from __future__ import annotations

import uuid

import pytest

from services.redeemer.domain.routing import (
    GroupState,
    candidates,
    every_group_full,
    matches,
    takes_turns,
)
from shared.events.issuer import RouteRule
from shared.refusals import Reason, Refusal

A, B, C = (uuid.UUID(int=i) for i in (1, 2, 3))
OPEN = GroupState("qq", members=0, reserved=0, verified_joins=0)


def state(
    members: int = 0, reserved: int = 0, profile: str = "qq", verified: int = 0
) -> GroupState:
    return GroupState(profile, members, reserved, verified)


def route(strategy: str, **kw: object) -> list[uuid.UUID]:
    args: dict[str, object] = {
        "strategy": strategy,
        "group_ids": [A, B, C],
        "rules": [],
        "projected": {A: OPEN, B: OPEN, C: OPEN},
        "attributes": {},
        "turn": 0,
    }
    args.update(kw)
    return candidates(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("strategy", "extra", "order"),
    [
        pytest.param("fill_in_order", {}, [A, B, C], id="fill in order"),
        pytest.param("round_robin", {"turn": 1}, [A, B, C], id="round robin, first turn"),
        pytest.param("round_robin", {"turn": 2}, [B, C, A], id="round robin, second turn"),
        pytest.param("round_robin", {"turn": 6}, [C, A, B], id="round robin wraps"),
        pytest.param(
            "least_full",
            {"projected": {A: state(5), B: state(1, 1), C: state(0, 3)}},
            [B, C, A],
            id="least full counts reserved seats",
        ),
        pytest.param(
            "least_full",
            {"projected": {A: state(2), B: state(1), C: state(0, 1)}},
            [B, C, A],
            id="least full ties keep the live code's order",
        ),
        pytest.param(
            "fill_in_order",
            {"projected": {A: OPEN, C: OPEN}},
            [A, C],
            id="a group not projected yet is skipped",
        ),
        pytest.param(
            "fill_in_order",
            {"projected": {A: state(profile="gov"), B: OPEN, C: OPEN}},
            [B, C],
            id="a group that admits no QR join is skipped",
        ),
        pytest.param(
            "fill_in_order",
            {"projected": {A: state(150, profile="personal"), B: OPEN, C: OPEN}},
            [B, C],
            id="a large personal group waiting for verified joins is skipped",
        ),
        pytest.param(
            "by_attribute",
            {
                "rules": [RouteRule({"city": ["上海"]}, C), RouteRule({"city": ["北京"]}, B)],
                "attributes": {"city": ["北京"]},
            },
            [B],
            id="by attribute: the first matching rule",
        ),
        pytest.param(
            "by_attribute",
            {"rules": [RouteRule({"city": ["上海"]}, C)], "attributes": {"city": ["广州"]}},
            [A, B, C],
            id="by attribute: no rule matches, fill in order",
        ),
        pytest.param(
            "by_attribute",
            {
                "rules": [RouteRule({"city": ["上海"]}, C)],
                "projected": {A: OPEN, B: OPEN},
                "attributes": {"city": ["上海"]},
            },
            [],
            id="by attribute: the rule's group is not projected yet",
        ),
        pytest.param(
            "fill_in_order", {"projected": {}}, [], id="nothing projected yet: no candidate"
        ),
    ],
)
def test_candidates_come_in_the_strategys_order(
    strategy: str, extra: dict[str, object], order: list[uuid.UUID]
) -> None:
    assert route(strategy, **extra) == order


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(
            {"projected": {A: state(profile="gov"), B: state(profile="gov")}},
            id="no group admits",
        ),
        pytest.param(
            {
                "strategy": "by_attribute",
                "rules": [RouteRule({"tag": ["vip"]}, B)],
                "projected": {A: OPEN, B: state(profile="gov"), C: OPEN},
                "attributes": {"tag": ["vip", "new"]},
            },
            id="the rule's group admits no QR join",
        ),
    ],
)
def test_routing_to_no_admitting_group_is_refused(extra: dict[str, object]) -> None:
    strategy = str(extra.pop("strategy", "fill_in_order"))
    with pytest.raises(Refusal) as refused:
        route(strategy, **extra)
    assert refused.value.reason is Reason.QR_JOIN_DISABLED


@pytest.mark.parametrize(
    ("rule", "attributes", "matched"),
    [
        (RouteRule({"city": ["上海", "北京"]}, A), {"city": ["北京"]}, True),
        (RouteRule({"city": ["上海"], "tag": ["vip"]}, A), {"city": ["上海"]}, False),
        (
            RouteRule({"city": ["上海"], "tag": ["vip"]}, A),
            {"city": ["上海"], "tag": ["x", "vip"]},
            True,
        ),
        (RouteRule({"city": ["上海"]}, A), {}, False),
    ],
)
def test_a_rule_matches_when_every_attribute_does(
    rule: RouteRule, attributes: dict[str, list[str]], matched: bool
) -> None:
    assert matches(rule, attributes) is matched


def test_only_round_robin_takes_turns() -> None:
    assert [
        takes_turns(s) for s in ("fill_in_order", "round_robin", "least_full", "by_attribute")
    ] == [
        False,
        True,
        False,
        False,
    ]


@pytest.mark.parametrize(
    ("groups", "max_groups", "retry"),
    [(3, None, None), (3, 3, None), (3, 10, 1)],
)
def test_every_group_full_asks_for_a_retry_only_if_another_can_open(
    groups: int, max_groups: int | None, retry: int | None
) -> None:
    refusal = every_group_full(groups, max_groups)
    assert refusal.reason is Reason.GROUP_FULL
    assert refusal.retry_after == retry
