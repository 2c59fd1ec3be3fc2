"""QR images of a code's payload, rendered once per variant and served with a strong ETag."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from functools import lru_cache

import segno

CONTENT_TYPES = {"png": "image/png", "svg": "image/svg+xml"}


@dataclass(frozen=True)
class Image:
    body: bytes
    content_type: str
    etag: str


@lru_cache(maxsize=2048)
def render(payload: str, kind: str, scale: int = 8, border: int = 4, error: str = "m") -> Image:
    """Render `payload`; segno takes milliseconds a PNG, so each variant is made once."""
    qr = segno.make(payload, error=error, micro=False)
    out = io.BytesIO()
    qr.save(out, kind=kind, scale=scale, border=border)
    body = out.getvalue()
    return Image(body, CONTENT_TYPES[kind], '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
