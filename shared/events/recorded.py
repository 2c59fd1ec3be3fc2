"""An event as a stream's history holds it: the aggregates of the issuer fold these."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from shared.events import Event


@dataclass(frozen=True)
class Recorded:
    version: int
    event: Event
    tenant_id: uuid.UUID | None
    occurred_at: datetime
