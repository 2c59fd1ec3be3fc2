"""A scan refused for a reason: decided inside a transaction, it rolls back, then is
recorded as a `ScanRejected` event and answered with the problem of that code."""

from __future__ import annotations

from typing import Any


class Refused(Exception):
    def __init__(
        self, reason: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra
