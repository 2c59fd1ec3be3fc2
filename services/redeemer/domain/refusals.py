"""What a refusal raised by the scan's SQL functions (../sql/) means: one SQLSTATE per
reason, decided in the same call that counted, so the answer needs no second query.

QM004 and QM005 are not refusals: the person's token or key changed between the scan's
read and its write (a second scan of the same person at the same moment), and the scan
reads again (`Retry`).
"""

from __future__ import annotations

from datetime import datetime

from shared.refusals import Reason, Refusal
from shared.rules import code_status
from shared.rules.daily_cap import seconds_to_local_midnight

REFUSED: dict[str, Reason] = {
    "QM001": Reason.SCAN_LIMIT_REACHED,
    "QM002": Reason.DAILY_LIMIT_REACHED,
    "QM003": Reason.GROUP_FULL,
    "QM011": Reason.CODE_REVOKED,
    "QM012": Reason.CODE_SUPERSEDED,
    "QM013": Reason.CODE_EXPIRED,
    "QM014": Reason.CODE_NOT_ACTIVE,
}
_STATUS: dict[str, code_status.Status] = {
    "QM011": "revoked",
    "QM012": "superseded",
    "QM013": "expired",
    "QM014": "scheduled",
}
RETRY = frozenset({"QM004", "QM005"})


class Retry(Exception):
    """Read the scan's context again and decide again."""

    @property
    def person_moved(self) -> bool:
        """The person or key sealed with is no longer theirs (made first by a concurrent
        scan of the same person, or erased), rather than their token having moved."""
        return bool(self.args) and self.args[0] == "QM005"


def refusal(
    sqlstate: str,
    *,
    now: datetime,
    timezone: str | None = None,
    not_before: datetime | None = None,
) -> Refusal | Retry | None:
    """The refusal (or retry) an SQLSTATE stands for; None for any other error."""
    if sqlstate in RETRY:
        return Retry(sqlstate)
    if sqlstate in _STATUS:
        return code_status.refusal(_STATUS[sqlstate], not_before, now)
    reason = REFUSED.get(sqlstate)
    if reason is Reason.SCAN_LIMIT_REACHED:
        return Refusal(reason, "this code has been scanned as many times as it allows")
    if reason is Reason.DAILY_LIMIT_REACHED:
        return Refusal(
            reason,
            "this code has been scanned as many times today as it allows",
            retry_after=seconds_to_local_midnight(now, timezone or "UTC"),
        )
    if reason is Reason.GROUP_FULL:
        return Refusal(reason, "the group has no free seat")
    return None
