"""What a person's scan carries, as the rules read it (decoded and bounded by the caller:
the API's schema, or the landing page's form)."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.rules.subjects import IPAddress


@dataclass(frozen=True)
class Location:
    lat: float
    lon: float
    accuracy_m: float | None = None

    def text(self) -> str:
        """As it is sealed in the log."""
        if self.accuracy_m is None:
            return f"{self.lat},{self.lon}"
        return f"{self.lat},{self.lon},{self.accuracy_m}"


@dataclass(frozen=True)
class ScanInput:
    payload: str
    user_id: str
    device_id: str | None = None
    ip: IPAddress | None = None
    location: Location | None = None
    invite_code: str | None = None
    phone_last4: str | None = None
    real_name: str | None = None
    display_name: str | None = None
    attributes: dict[str, list[str]] = field(default_factory=dict)
    # False on the anonymous landing page: nobody vouches for what the person says
    vouched: bool = True
    # True when `ip` is the person's own (the page's visitor, or forwarded by a trusted
    # proxy), not the calling backend's: wrong answers then count against the address too
    address_is_persons: bool = False

    def answer(self, mode: str) -> str | None:
        """What the person answered to a code of verification `mode`."""
        return {
            "invite_code": self.invite_code,
            "phone_last4": self.phone_last4,
            "real_name": self.real_name,
        }.get(mode)
