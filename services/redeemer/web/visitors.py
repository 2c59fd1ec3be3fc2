"""Who is on the landing page: an anonymous visitor, known by a signed cookie holding an
id, a device id and the display name they entered, and the language they read.

A real deployment puts the platform's own login in front of the page instead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass

from aiohttp import web

from services.redeemer.web.text import TEXT

COOKIE = "qunma_visitor"


def language(request: web.Request) -> str:
    chosen = request.query.get("lang")
    if chosen in TEXT:
        return chosen
    for part in request.headers.get("Accept-Language", "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh"
        if tag.startswith("en"):
            return "en"
    return "zh"


@dataclass(frozen=True)
class Visitor:
    user_id: str
    device_id: str
    name: str


class Cookies:
    """Signed visitor cookies and the form's CSRF token (HMAC-SHA256 under one secret)."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret

    def _mac(self, data: bytes) -> str:
        return hmac.new(self.secret, data, hashlib.sha256).hexdigest()[:32]

    def read(self, request: web.Request) -> Visitor | None:
        raw = request.cookies.get(COOKIE, "")
        body, _, mac = raw.rpartition(".")
        if not body or not hmac.compare_digest(self._mac(body.encode()), mac):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            return Visitor(str(data["u"]), str(data["d"]), str(data.get("n", ""))[:32])
        except (ValueError, KeyError, TypeError):
            return None

    def write(self, response: web.StreamResponse, visitor: Visitor, *, secure: bool) -> None:
        body = (
            base64.urlsafe_b64encode(
                json.dumps(
                    {"u": visitor.user_id, "d": visitor.device_id, "n": visitor.name},
                    ensure_ascii=False,
                ).encode()
            )
            .decode()
            .rstrip("=")
        )
        response.set_cookie(
            COOKIE,
            f"{body}.{self._mac(body.encode())}",
            max_age=365 * 86400,
            httponly=True,
            samesite="Lax",
            secure=secure,  # over https, never sent in clear
            path="/j/",
        )

    def csrf(self, visitor: Visitor, token: str) -> str:
        return self._mac(f"csrf|{visitor.user_id}|{token}".encode())

    def csrf_ok(self, visitor: Visitor, token: str, sent: str) -> bool:
        return hmac.compare_digest(self.csrf(visitor, token).encode(), sent.encode())


def new_visitor() -> Visitor:
    return Visitor("anon-" + uuid.uuid4().hex, "browser-" + secrets.token_hex(8), "")
