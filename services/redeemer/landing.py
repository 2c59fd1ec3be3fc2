"""The landing page a phone camera opens: `GET /j/{token}`, and its form, `POST /j/{token}`.

Mobile-first HTML with no external assets; Chinese or English by Accept-Language. It works
without JavaScript for the plain case (a form post scans and joins in one go); a script
only fills in the location when the code is geo-fenced. A person is identified by a signed
cookie holding an anonymous id, a device id and the display name they enter. A real
deployment puts the platform's own login in front of this page instead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web

from services.redeemer.scans import Location, ScanInput
from shared.http.problems import Problem

COOKIE = "qunma_visitor"

TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "title": "加入群聊",
        "members": "成员",
        "of": "/",
        "valid_for": "有效期还剩",
        "days": "天",
        "hours": "小时",
        "minutes": "分钟",
        "no_expiry": "长期有效",
        "your_name": "你的昵称",
        "invite_code": "邀请码",
        "phone_last4": "手机号后四位",
        "real_name": "真实姓名",
        "location": "使用我的位置",
        "location_needed": "加入该群需要你的位置信息",
        "location_ok": "已获取位置",
        "join": "加入群聊",
        "joined": "你已加入群聊",
        "already": "你已经是群成员",
        "pending": "已提交入群申请，请等待管理员审核",
        "dead": "该二维码已失效",
        "dead_hint": "请向群成员索取新的二维码",
        "invalid": "无效的二维码",
        "try_again": "返回",
        "welcome": "欢迎",
        "live": "活码",
        "approval": "加入需要管理员审核",
        "scheduled": "该二维码尚未生效",
        "no_js": "请在浏览器中开启定位后重试",
    },
    "en": {
        "title": "Join the group",
        "members": "members",
        "of": "/",
        "valid_for": "Valid for",
        "days": "d",
        "hours": "h",
        "minutes": "min",
        "no_expiry": "Does not expire",
        "your_name": "Your name",
        "invite_code": "Invite code",
        "phone_last4": "Last 4 digits of your phone",
        "real_name": "Your real name",
        "location": "Use my location",
        "location_needed": "Joining this group needs your location",
        "location_ok": "Location received",
        "join": "Join the group",
        "joined": "You joined the group",
        "already": "You are already a member",
        "pending": "Your request is waiting for an administrator",
        "dead": "This QR code has expired",
        "dead_hint": "Ask a member for a new code",
        "invalid": "This is not a valid QR code",
        "try_again": "Back",
        "welcome": "Welcome",
        "live": "Live code",
        "approval": "An administrator approves each request",
        "scheduled": "This QR code is not valid yet",
        "no_js": "Turn on location in your browser and try again",
    },
}

CSS = """
*{box-sizing:border-box}body{margin:0;font:16px/1.5 -apple-system,"PingFang SC","Microsoft YaHei",
sans-serif;background:#ededed;color:#111}main{max-width:420px;margin:0 auto;padding:24px 16px}
.card{background:#fff;border-radius:12px;padding:24px;text-align:center;box-shadow:0 1px 3px #0002}
.avatar{width:72px;height:72px;border-radius:12px;background:#07c160;color:#fff;font-size:36px;
line-height:72px;margin:0 auto 12px}h1{font-size:20px;margin:0 0 4px}p{margin:6px 0;color:#555}
form{margin-top:20px;text-align:left}
label{display:block;font-size:14px;color:#555;margin:12px 0 4px}
input{width:100%;padding:12px;font-size:16px;border:1px solid #ccc;border-radius:8px}
button{width:100%;margin-top:20px;padding:14px;font-size:17px;border:0;border-radius:8px;
background:#07c160;color:#fff}button.secondary{background:#f2f2f2;color:#111}
.error{background:#fff0f0;color:#c00;border-radius:8px;padding:10px;margin-top:16px}
.ok{color:#07c160;font-size:48px}.dead{color:#999;font-size:48px}small{color:#888}
"""


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


def _left(expires_at: datetime | None, now: datetime, t: dict[str, str]) -> str:
    if expires_at is None:
        return t["no_expiry"]
    seconds = max(0, int((expires_at - now).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    if days:
        return f"{t['valid_for']} {days} {t['days']} {hours} {t['hours']}"
    return f"{t['valid_for']} {hours} {t['hours']} {rest // 60} {t['minutes']}"


def _say(lang: str, problem: Problem) -> str:
    """The problem in the page's language: Chinese from the catalogue, English as a sentence."""
    if lang == "zh" and problem.message_zh:
        return problem.message_zh
    return problem.detail[:1].upper() + problem.detail[1:]


def page(
    lang: str,
    title: str,
    body: str,
    status: int = 200,
    headers: dict[str, str] | None = None,
    scripts: tuple[str, ...] = (),
) -> web.Response:
    """A page; `scripts` are the page's own (the only ones that carry the CSP nonce)."""
    nonce = secrets.token_urlsafe(12)
    own = "".join(f'<script nonce="{nonce}">{script}</script>' for script in scripts)
    document = (
        f'<!doctype html><html lang="{"zh-CN" if lang == "zh" else "en"}"><head>'
        '<meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body><main>"
        f"{body}{own}</main></body></html>"
    )
    csp = (
        f"default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-{nonce}'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )
    return web.Response(
        status=status,
        text=document,
        content_type="text/html",
        headers={
            "Content-Security-Policy": csp,
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
            **(headers or {}),
        },
    )


def _field(name: str, label: str, value: str = "", kind: str = "text", extra: str = "") -> str:
    return (
        f'<label for="{name}">{html.escape(label)}</label>'
        f'<input id="{name}" name="{name}" type="{kind}" value="{html.escape(value)}" '
        f"{extra}>"
    )


_LOCATE = """
(function(){var b=document.getElementById('locate');if(!b)return;b.hidden=false;
b.addEventListener('click',function(){navigator.geolocation.getCurrentPosition(function(p){
document.getElementById('lat').value=p.coords.latitude;
document.getElementById('lon').value=p.coords.longitude;
document.getElementById('accuracy').value=p.coords.accuracy;
b.textContent=b.dataset.ok;},function(){b.textContent=b.dataset.fail;},
{enableHighAccuracy:true,timeout:10000});});})();
"""


def form_page(
    lang: str,
    view: dict[str, Any],
    visitor: Visitor,
    csrf: str,
    now: datetime,
    error: Problem | None = None,
    entered: dict[str, str] | None = None,
) -> web.Response:
    t = TEXT[lang]
    entered = entered or {}
    name = html.escape(view["name"])
    members = f"{view['members']} {t['of']} {view['max_members']} {t['members']}"
    parts = [
        '<div class="card">',
        f'<div class="avatar">{html.escape(view["name"][:1] or "群")}</div>',
        f"<h1>{name}</h1>",
        f"<p>{html.escape(members)}</p>",
        f"<p><small>{html.escape(_left(view.get('expires_at'), now, t))}</small></p>",
    ]
    if view.get("mode") in ("approval", "real_name"):
        parts.append(f"<p><small>{t['approval']}</small></p>")
    if error is not None:
        message = _say(lang, error)
        parts.append(f'<div class="error" role="alert">{html.escape(message)}</div>')
    parts.append('<form method="post">')
    parts.append(f'<input type="hidden" name="csrf" value="{csrf}">')
    parts.append(
        _field(
            "name",
            t["your_name"],
            entered.get("name") or visitor.name,
            extra='maxlength="32" required autocomplete="nickname"',
        )
    )
    mode = view.get("mode")
    if mode == "invite_code":
        parts.append(
            _field(
                "invite_code",
                t["invite_code"],
                entered.get("invite_code", ""),
                extra='maxlength="16" required autocomplete="off"',
            )
        )
    if mode == "phone_last4":
        parts.append(
            _field(
                "phone_last4",
                t["phone_last4"],
                entered.get("phone_last4", ""),
                kind="tel",
                extra='pattern="[0-9]{4}" maxlength="4" required',
            )
        )
    if mode == "real_name":
        parts.append(
            _field(
                "real_name",
                t["real_name"],
                entered.get("real_name", ""),
                extra='maxlength="64" required autocomplete="name"',
            )
        )
    if view.get("geofence"):
        parts.append(f"<p><small>{t['location_needed']}</small></p>")
        for hidden in ("lat", "lon", "accuracy"):
            parts.append(
                f'<input type="hidden" id="{hidden}" name="{hidden}" '
                f'value="{html.escape(entered.get(hidden, ""))}">'
            )
        parts.append(
            f'<button type="button" class="secondary" id="locate" hidden '
            f'data-ok="{t["location_ok"]}" data-fail="{t["no_js"]}">'
            f"{t['location']}</button>"
        )
        parts.append(f"<noscript><p><small>{t['no_js']}</small></p></noscript>")
    parts.append(f'<button type="submit" id="join">{t["join"]}</button></form></div>')
    scripts = (_LOCATE,) if view.get("geofence") else ()
    status = error.status if error is not None else 200
    return page(lang, f"{t['title']} · {view['name']}", "".join(parts), status, scripts=scripts)


def result_page(
    lang: str, kind: str, group_name: str, visitor: Visitor, status: int = 200
) -> web.Response:
    t = TEXT[lang]
    icon = "✓" if kind in ("joined", "already") else "…"
    greeting = f"<p>{t['welcome']}, {html.escape(visitor.name)}</p>" if visitor.name else ""
    body = (
        f'<div class="card"><div class="ok">{icon}</div><h1 id="result">{t[kind]}</h1>'
        f"<p>{html.escape(group_name)}</p>{greeting}</div>"
    )
    return page(lang, t[kind], body, status)


def dead_page(lang: str, problem: Problem) -> web.Response:
    t = TEXT[lang]
    title = (
        t["invalid"]
        if problem.code == "invalid_code"
        else (t["scheduled"] if problem.code == "code_not_active" else t["dead"])
    )
    message = _say(lang, problem)
    body = (
        f'<div class="card"><div class="dead">✕</div><h1 id="result">{title}</h1>'
        f"<p>{html.escape(message or '')}</p><p><small>{t['dead_hint']}</small></p></div>"
    )
    return page(lang, title, body, problem.status)


def problem_page(lang: str, problem: Problem) -> web.Response:
    """Any other refusal (too many requests, a code still on its way, a forged form)."""
    message = _say(lang, problem)
    body = (
        f'<div class="card"><div class="dead">!</div><h1 id="result">'
        f"{html.escape(message or '')}</h1><p><small>{html.escape(problem.detail)}</small>"
        "</p></div>"
    )
    return page(lang, message or problem.title, body, problem.status, problem.headers)


def scan_input(token: str, visitor: Visitor, form: dict[str, str], ip: Any) -> ScanInput:
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
