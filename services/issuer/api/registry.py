"""The issuer's endpoints, declared once for validation and for /openapi.json."""

from __future__ import annotations

from shared.http.endpoints import Api

api = Api(
    "qunma issuer",
    "1.0.0",
    "Create groups, issue signed group-invite QR codes with every limit, run live codes (活码), "
    "and manage keys. Every change is an event in the log `qunma.issuer.events`.",
)
