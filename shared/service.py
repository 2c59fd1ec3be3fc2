"""Running one service: logging, then aiohttp's runner (which handles SIGINT and SIGTERM)."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # aiokafka logs every reconnect attempt at ERROR; the relay and follower report outages.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


def _event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # not on Windows: the standard loop serves, more slowly
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def serve(app: web.Application, host: str, port: int) -> None:
    web.run_app(
        app,
        host=host,
        port=port,
        print=None,
        access_log=None,
        shutdown_timeout=10,
        loop=_event_loop(),
    )
