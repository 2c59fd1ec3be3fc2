"""The redeemer's endpoints, declared once for validation and for /openapi.json."""

from __future__ import annotations

from shared.http.endpoints import Api

api = Api(
    "qunma redeemer",
    "1.0.0",
    "Decide scans, hand out single-use join tokens, turn them into memberships, decide join "
    "requests, and report. Every decision is an event in the log `qunma.redeemer.events`.",
)
