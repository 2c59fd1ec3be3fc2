"""`/healthz` (the process answers) and `/readyz` (it can serve: database, projection)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from shared.http.json import json_response

ReadyCheck = Callable[[web.Application], Awaitable[dict[str, Any]]]


def health_routes(checks: dict[str, ReadyCheck]) -> list[web.RouteDef]:
    async def healthz(request: web.Request) -> web.Response:
        return json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        report: dict[str, Any] = {}
        ready = True
        for name, check in checks.items():
            try:
                report[name] = await check(request.app)
            except Exception as exc:  # any failing dependency means "not ready", with why
                report[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            ready = ready and bool(report[name].get("ok"))
        # 503 is what load balancers and orchestrators read as "do not route here yet".
        return json_response({"ready": ready, "checks": report}, status=200 if ready else 503)

    return [web.get("/healthz", healthz), web.get("/readyz", readyz)]
