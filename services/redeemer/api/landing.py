"""GET and POST /j/{token}: the page a phone camera opens. Every answer is a page, errors too."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from services.redeemer.api.registry import api
from services.redeemer.application.propagation import not_propagated
from services.redeemer.context import (
    CLOCK,
    COOKIES,
    JOINER,
    PROJECTED,
    SCANNER,
    SETTINGS,
    TRUSTED,
)
from services.redeemer.web.forms import scan_input
from services.redeemer.web.pages import dead_page, form_page, problem_page, result_page
from services.redeemer.web.visitors import Visitor, language, new_visitor
from shared.db import unavailable
from shared.http.clientip import client_ip, from_trusted_proxy
from shared.http.endpoints import Media
from shared.http.problems import Problem, not_ready, note_outage
from shared.http.ratelimit import RATE_LIMITER
from shared.refusals import Reason, Refusal
from shared.rules import code_status
from shared.store.actor import ACTOR

_DEAD = {"code_expired", "code_revoked", "code_superseded", "code_not_active", "invalid_code"}
_HTML = {
    200: Media("text/html", "the page"),
    302: None,
    410: Media("text/html", "a dead code: 该二维码已失效"),
}

_CODE_VIEW = """
SELECT g.name, g.members, g.max_members, c.expires_at, c.not_before, c.status,
       c.verification_mode AS mode, c.geo_lat IS NOT NULL AS geofence, c.fallback_url,
       c.phone_last4 IS NOT NULL AS phone_listed
FROM codes c JOIN groups g USING (group_id) WHERE c.code_id = $1
"""
_LIVE_VIEW = """
SELECT l.name, l.status, l.fallback_url,
       coalesce(sum(g.members), 0) AS members, coalesce(sum(g.max_members), 0) AS max_members
FROM live_codes l LEFT JOIN groups g ON g.group_id = ANY(l.group_ids)
WHERE l.live_code_id = $1 GROUP BY l.live_code_id
"""


async def _view(request: web.Request, token_text: str) -> dict[str, Any]:
    """What the page shows; raises the refusal of a code that cannot be joined."""
    token, _ = await request.app[SCANNER].signatures.verify(token_text)
    # A code issued a moment ago is on its way from the issuer: wait for it, as a scan does.
    live = token.kind == "live"
    row = await request.app[PROJECTED].row(_LIVE_VIEW if live else _CODE_VIEW, token.code_id)
    if row is None:
        raise not_propagated("live code" if live else "code")
    view = dict(row)
    now = request.app[CLOCK]()
    found = code_status.status(
        revoked=view["status"] == "revoked",
        superseded=view["status"] == "superseded",
        not_before=view.get("not_before"),
        expires_at=view.get("expires_at"),
        now=now,
    )
    if found != "active":
        refusal = code_status.refusal(found, view.get("not_before"), now)
        raise refusal.adding(fallback_url=view.get("fallback_url"))
    if view.get("mode") == "phone_last4" and not view.get("phone_listed"):
        raise Refusal(
            Reason.VERIFICATION_UNAVAILABLE,
            "this code's phone digits are checked by the platform: open it in its app",
        )
    return view


def _problem(exc: Problem | Refusal) -> Problem:
    return Problem.of(exc) if isinstance(exc, Refusal) else exc


def _friendly_when_down(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A person holding a phone gets a page, not JSON, while the database cannot be reached:
    "busy, try again" in their language, 503 with Retry-After."""

    @functools.wraps(handler)
    async def page_even_when_down(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except Exception as exc:
            if not unavailable(exc):
                raise
            note_outage(request, exc)
            return problem_page(language(request), not_ready())

    return page_even_when_down


def _over_https(request: web.Request) -> bool:
    """Whether the person reached the page over https: directly, or through a trusted proxy
    that says so (the page's public URL being https says it too)."""
    if request.secure or request.app[SETTINGS].public_url.startswith("https://"):
        return True
    proto = request.headers.get("X-Forwarded-Proto", "").lower()
    return from_trusted_proxy(request, request.app[TRUSTED]) and proto == "https"


def _as_page(lang: str, problem: Problem) -> web.Response:
    if problem.code in _DEAD:
        fallback = problem.extra.get("fallback_url")
        if fallback and problem.code != "code_not_active":
            raise web.HTTPFound(fallback)
        return dead_page(lang, problem)
    return problem_page(lang, problem)


@api.route(
    "GET",
    "/j/{token}",
    summary="The landing page of a QR code",
    tags=["landing"],
    responses=_HTML,
    errors=["rate_limited"],
)
@_friendly_when_down
async def landing(request: web.Request) -> web.StreamResponse:
    """Chinese or English by Accept-Language (or ?lang=zh|en). A dead code redirects to its
    fallback URL, or shows 该二维码已失效."""
    lang = language(request)
    token = request.match_info["token"]
    try:
        limiter = request.app[RATE_LIMITER]
        await limiter.take(limiter.address(client_ip(request, request.app[TRUSTED])))
        view = await _view(request, token)
    except (Problem, Refusal) as exc:
        return _as_page(lang, _problem(exc))
    cookies = request.app[COOKIES]
    visitor = cookies.read(request) or new_visitor()
    response = form_page(lang, view, visitor, cookies.csrf(visitor, token), request.app[CLOCK]())
    cookies.write(response, visitor, secure=_over_https(request))
    return response


@api.route(
    "POST",
    "/j/{token}",
    summary="Join from the landing page",
    tags=["landing"],
    responses={**_HTML, 202: Media("text/html", "a join request waits")},
    errors=["rate_limited", "forbidden"],
)
@_friendly_when_down
async def landing_join(request: web.Request) -> web.StreamResponse:
    """The page's form (application/x-www-form-urlencoded): scans and joins in one go."""
    lang = language(request)
    token = request.match_info["token"]
    cookies = request.app[COOKIES]
    visitor = cookies.read(request)
    form = {k: str(v) for k, v in (await request.post()).items()}
    if visitor is None:  # no cookie from the page: start again from the page
        raise web.HTTPSeeOther(request.path)
    ip = client_ip(request, request.app[TRUSTED])
    try:
        await request.app[RATE_LIMITER].take(request.app[RATE_LIMITER].address(ip))
        if not cookies.csrf_ok(visitor, token, form.get("csrf", "")):
            raise Problem("forbidden", "the form does not come from this page; reload it")
        view = await _view(request, token)
    except (Problem, Refusal) as exc:
        return _as_page(lang, _problem(exc))
    visitor = Visitor(
        visitor.user_id, visitor.device_id, form.get("name", "").strip()[:32] or visitor.name
    )
    # No API key on this page: the person is the actor of what it records (for this
    # request's task only: aiohttp runs each request in its own).
    ACTOR.set("landing")
    try:
        scanned = await request.app[SCANNER].scan(None, scan_input(token, visitor, form, ip))
        if scanned.outcome == "token":
            assert scanned.join_token is not None
            await request.app[JOINER].join(
                scanned.tenant_id, scanned.join_token, visitor.user_id, visitor.device_id
            )
            response = result_page(lang, "joined", scanned.group.name, visitor, 201)
        elif scanned.outcome == "member":
            response = result_page(lang, "already", scanned.group.name, visitor)
        else:
            response = result_page(lang, "pending", scanned.group.name, visitor, 202)
    except (Problem, Refusal) as exc:
        problem = _problem(exc)
        if problem.code in _DEAD:
            return _as_page(lang, problem)
        response = form_page(
            lang,
            view,
            visitor,
            cookies.csrf(visitor, token),
            request.app[CLOCK](),
            error=problem,
            entered=form,
        )
    cookies.write(response, visitor, secure=_over_https(request))
    return response
