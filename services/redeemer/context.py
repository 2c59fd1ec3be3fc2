"""Typed keys for what the redeemer's composition root puts in the application."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from services.redeemer.erasure import Retention
from services.redeemer.join_requests import JoinRequests
from services.redeemer.joins import Joiner
from services.redeemer.landing import Cookies
from services.redeemer.scans import Scanner
from services.redeemer.sweeper import Sweeper
from shared.clock import Clock
from shared.config import Settings
from shared.crypto.user_index import UserIndex
from shared.db import RequestPool
from shared.http.admission import FairGate
from shared.http.clientip import Network
from shared.store.follower import Follower
from shared.store.relay import Relay

SETTINGS = web.AppKey("settings", Settings)
POOL = web.AppKey("pool", RequestPool)
SCANNER = web.AppKey("scanner", Scanner)
ADMISSION = web.AppKey("admission", FairGate)
USERS = web.AppKey("user_index", UserIndex)
JOINER = web.AppKey("joiner", Joiner)
REQUESTS = web.AppKey("join_requests", JoinRequests)
SWEEPER = web.AppKey("sweeper", Sweeper)
RETENTION = web.AppKey("retention", Retention)
FOLLOWER = web.AppKey("follower", Follower)
RELAY = web.AppKey("relay", Relay)
COOKIES = web.AppKey("cookies", Cookies)
TRUSTED: web.AppKey[Sequence[Network]] = web.AppKey("trusted_proxies")
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
