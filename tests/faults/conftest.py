"""The fault suite: real processes under a recorded workload, one fault each, and then the
same checks every time (tests/faults/checks.py)."""

from __future__ import annotations

# Join tokens last 3 s here, so that the seats of tokens nobody redeemed come back quickly.
FAULT_ENV = {
    "QUNMA_JOIN_TOKEN_TTL_SECONDS": "3",
    "QUNMA_CHECKPOINT_SECONDS": "0.5",
    "QUNMA_RATE_LIMIT_PER_IP": "0",
    "QUNMA_RATE_LIMIT_PER_USER": "0",
    "QUNMA_RATE_LIMIT_PER_KEY": "0",
    "QUNMA_RATE_LIMIT_PER_TENANT": "0",
}
