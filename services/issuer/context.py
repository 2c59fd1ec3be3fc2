"""Typed keys for what the issuer's composition root puts in the application."""

from __future__ import annotations

from aiohttp import web

from services.issuer.bus import Bus
from shared.clock import Clock
from shared.config import Settings
from shared.db import RequestPool
from shared.store.follower import Follower
from shared.store.relay import Relay

SETTINGS = web.AppKey("settings", Settings)
POOL = web.AppKey("pool", RequestPool)
BUS = web.AppKey("bus", Bus)
RELAY = web.AppKey("relay", Relay)
FOLLOWER = web.AppKey("follower", Follower)
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
