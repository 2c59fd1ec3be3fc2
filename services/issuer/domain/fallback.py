"""Where a dead code may send a person: its fallback URL, within the tenant's domains.

A fallback URL is shown to (or followed by) anyone who scans a dead code, so it is a place
a tenant vouches for: http or https, no credentials in it (`https://host@evil.example/`
reads as one host and goes to another), and, when the tenant has listed its domains, on
one of them or a subdomain.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from shared.refusals import Reason, Refusal


def domain_name(text: str) -> str:
    """A domain as the tenant lists it: lower case, no trailing dot."""
    return text.strip().lower().rstrip(".")


def check_fallback_url(
    url: str, allowed: Sequence[str] | None, field: str = "fallback_url"
) -> None:
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
    except ValueError:
        raise Refusal(Reason.INVALID_REQUEST, f"{field}: not a URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise Refusal(Reason.INVALID_REQUEST, f"{field}: an http or https URL with a host")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise Refusal(Reason.INVALID_REQUEST, f"{field}: no user name or password in the URL")
    if allowed is not None and not any(host == d or host.endswith("." + d) for d in allowed):
        raise Refusal(
            Reason.INVALID_REQUEST,
            f"{field}: {host} is not one of this tenant's fallback domains "
            f"({', '.join(allowed) or 'none'}); see PATCH /v1/tenant",
        )
