"""Live codes (活码): which of a live code's groups a scan tries, in which order.

Routing only orders candidates; the seat itself is taken by the database, one group at a
time in this order, with the same conditional reservation as a code's group, so no group
passes its cap however many scans race (application/live.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from shared.events.issuer import RouteRule
from shared.refusals import Reason, Refusal
from shared.rules.verification import qr_join_refusal

STRATEGIES = ("fill_in_order", "round_robin", "least_full", "by_attribute")


@dataclass(frozen=True)
class GroupState:
    """A candidate group as projected: whether it admits, and how full it is."""

    profile: str
    members: int
    reserved: int
    verified_joins: int

    def admits_unverified(self) -> bool:
        # A live code has no verification of its own: its groups are asked as for a code
        # of verification `none`.
        return qr_join_refusal(self.profile, "none", self.members, self.verified_joins) is None


def takes_turns(strategy: str) -> bool:
    """Whether the strategy needs the live code's next turn (a counter in the database)."""
    return strategy == "round_robin"


def matches(rule: RouteRule, attributes: Mapping[str, Sequence[str]]) -> bool:
    return all(
        any(value in wanted for value in attributes.get(name, []))
        for name, wanted in rule.match.items()
    )


def candidates(
    *,
    strategy: str,
    group_ids: Sequence[uuid.UUID],
    rules: Sequence[RouteRule],
    projected: Mapping[uuid.UUID, GroupState],
    attributes: Mapping[str, Sequence[str]],
    turn: int = 0,
) -> list[uuid.UUID]:
    """The groups to try, in the strategy's order: projected ones (a group the issuer opened
    a moment ago may not be yet) that admit through an unverified code."""
    admitting = {g for g, state in projected.items() if state.admits_unverified()}
    if projected and not admitting:
        raise Refusal(
            Reason.QR_JOIN_DISABLED, "no group of this live code admits through a QR code now"
        )
    groups = [g for g in group_ids if g in admitting]
    if not groups:
        return []
    if strategy == "by_attribute":
        for rule in rules:
            if matches(rule, attributes):
                if rule.group_id in projected and rule.group_id not in admitting:
                    raise Refusal(
                        Reason.QR_JOIN_DISABLED,
                        "the group this scan is routed to admits no QR scans",
                    )
                return [rule.group_id] if rule.group_id in admitting else []
        return groups  # no rule matches: fill in order
    if strategy == "round_robin":
        start = (turn - 1) % len(groups)
        return groups[start:] + groups[:start]
    if strategy == "least_full":
        order = {g: i for i, g in enumerate(groups)}
        taken = {g: projected[g].members + projected[g].reserved for g in groups}
        return sorted(groups, key=lambda g: (taken[g], order[g]))
    return groups


def every_group_full(groups_now: int, max_groups: int | None) -> Refusal:
    """No candidate had a seat. With auto_create room left the issuer opens another group
    on hearing of it (the rejection carries how many groups were seen): worth a retry."""
    more = max_groups is not None and groups_now < max_groups
    return Refusal(
        Reason.GROUP_FULL,
        "every group of this live code is full",
        retry_after=1 if more else None,
    )
