"""The application's answers as the API's bodies (api/schemas.py)."""

from __future__ import annotations

from services.redeemer.api.schemas import GroupSummary, Membership, ScanOut
from services.redeemer.application import results


def membership(m: results.Membership) -> Membership:
    return Membership(m.group_id, m.user_id, m.joined_at)


def scan_out(scanned: results.Scanned) -> tuple[int, ScanOut]:
    """The HTTP status and body: 202 while a join request waits, else 200."""
    g = scanned.group
    body = ScanOut(
        status=scanned.outcome,
        group=GroupSummary(g.group_id, g.name, g.members, g.max_members),
        join_token=scanned.join_token,
        expires_at=scanned.expires_at,
        membership=membership(scanned.membership) if scanned.membership else None,
        join_request_id=scanned.join_request_id,
    )
    return (202 if scanned.outcome == "pending" else 200), body
