"""/readyz on a real HTTP server: a failing check says what kind of failure, never the
text of the error (which can name hosts, users, paths)."""

from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp import web

from shared.http.endpoints import Api
from shared.http.health import register_health
from shared.http.problems import problem_middleware
from shared.runtime.children import free_port


async def test_a_failing_check_is_logged_not_shown() -> None:
    async def database(app: web.Application) -> dict[str, Any]:
        raise OSError("connect to postgresql://qunma:hunter2@db.internal:5432 failed")

    async def fine(app: web.Application) -> dict[str, Any]:
        return {"ok": True}

    api = Api("t", "1", "t")
    register_health(api, {"database": database, "other": fine})
    app = web.Application(middlewares=[problem_middleware])
    app.add_routes(api.routes())
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/readyz") as resp,
        ):
            body = await resp.text()
            assert resp.status == 503
    finally:
        await runner.cleanup()
    assert "hunter2" not in body and "db.internal" not in body
    assert '"error":"unreachable"' in body
