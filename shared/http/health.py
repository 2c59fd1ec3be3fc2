"""`/healthz` (the process answers) and `/readyz` (it can serve: database, projection)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import msgspec
from aiohttp import web

from shared.http.endpoints import Api
from shared.http.json import json_response
from shared.store.relay import Relay

log = logging.getLogger(__name__)

ReadyCheck = Callable[[web.Application], Awaitable[dict[str, Any]]]


class Health(msgspec.Struct):
    """The process answers"""

    status: str


class Readiness(msgspec.Struct):
    """Whether the service can serve, and each check's report"""

    ready: bool
    checks: dict[str, Any]


def relay_ready(relay_key: web.AppKey[Relay]) -> ReadyCheck:
    """The relay's report: any replica may lead, and each is ready whether or not it does."""

    async def check(app: web.Application) -> dict[str, Any]:
        stats = app[relay_key].stats
        return {
            "ok": True,
            "leader": stats.leader,
            "published": stats.published,
            "republished_partitions": stats.republished_partitions,
        }

    return check


def _kind(exc: Exception) -> str:
    if isinstance(exc, OSError | asyncpg.PostgresConnectionError | asyncpg.InterfaceError):
        return "unreachable"
    if isinstance(exc, TimeoutError):
        return "timeout"
    return "failed"


def register_health(api: Api, checks: dict[str, ReadyCheck]) -> None:
    @api.route("GET", "/healthz", summary="Liveness", tags=["operations"], responses={200: Health})
    async def healthz(request: web.Request) -> web.Response:
        return json_response(Health("ok"))

    @api.route(
        "GET",
        "/readyz",
        summary="Readiness",
        tags=["operations"],
        responses={200: Readiness, 503: Readiness},
    )
    async def readyz(request: web.Request) -> web.Response:
        """503 is what load balancers and orchestrators read as "do not route here yet"."""
        report: dict[str, Any] = {}
        ready = True
        for name, check in checks.items():
            try:
                report[name] = await check(request.app)
            except Exception as exc:  # any failing dependency means "not ready"
                # The why goes to the log; the probe is unauthenticated, so it gets a name
                # of the kind of failure, never the text (a DSN, a host, a path).
                log.warning("readiness check %s failed: %s: %s", name, type(exc).__name__, exc)
                report[name] = {"ok": False, "error": _kind(exc)}
            ready = ready and bool(report[name].get("ok"))
        return json_response(Readiness(ready, report), status=200 if ready else 503)
