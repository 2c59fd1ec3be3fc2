"""The landing page's templates: mobile-first HTML with no external assets, in Chinese or
English. It works without JavaScript for the plain case (a form post scans and joins in
one go); a script only fills in the location when the code is geo-fenced.
"""

from __future__ import annotations

import html
import secrets
from datetime import datetime
from typing import Any

from aiohttp import web

from services.redeemer.web.text import TEXT
from services.redeemer.web.visitors import Visitor
from shared.http.problems import Problem

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
