"""The landing page's form, read as a scan: what an anonymous visitor typed, bounded."""

from __future__ import annotations

from services.redeemer.domain.inputs import Location, ScanInput
from services.redeemer.web.visitors import Visitor
from shared.rules.subjects import IPAddress


def scan_input(
    token: str, visitor: Visitor, form: dict[str, str], ip: IPAddress | None
) -> ScanInput:
    location = None
    try:
        if form.get("lat") and form.get("lon"):
            location = Location(
                float(form["lat"]),
                float(form["lon"]),
                float(form["accuracy"]) if form.get("accuracy") else None,
            )
            if not (-90 <= location.lat <= 90 and -180 <= location.lon <= 180):
                location = None
    except ValueError:
        location = None
    return ScanInput(
        payload=token,
        user_id=visitor.user_id,
        device_id=visitor.device_id,
        ip=ip,
        location=location,
        invite_code=form.get("invite_code", "").strip()[:32] or None,
        phone_last4=(form.get("phone_last4", "").strip() or None),
        real_name=form.get("real_name", "").strip()[:64] or None,
        display_name=visitor.name or None,
        vouched=False,  # an anonymous visitor: nobody vouches for what they type
        address_is_persons=True,
    )
