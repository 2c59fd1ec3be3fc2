"""Typed keys for what the redeemer's composition root puts in the application."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from services.redeemer.joins import Joiner
from services.redeemer.scans import Scanner
from services.redeemer.sweeper import Sweeper
from shared.config import Settings
from shared.store.follower import Follower
from shared.store.relay import Relay

SETTINGS = web.AppKey("settings", Settings)
POOL = web.AppKey("pool", asyncpg.Pool)
SCANNER = web.AppKey("scanner", Scanner)
JOINER = web.AppKey("joiner", Joiner)
SWEEPER = web.AppKey("sweeper", Sweeper)
FOLLOWER = web.AppKey("follower", Follower)
RELAY = web.AppKey("relay", Relay)
