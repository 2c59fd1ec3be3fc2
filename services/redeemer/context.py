"""Typed keys for what the redeemer's composition root puts in the application."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from services.redeemer.application.joins import Joiner
from services.redeemer.application.people import People
from services.redeemer.application.propagation import Projected
from services.redeemer.application.requests import JoinRequests
from services.redeemer.application.scanner import Scanner
from services.redeemer.background.retention import Retention
from services.redeemer.background.sweeper import Sweeper
from services.redeemer.web.visitors import Cookies
from shared.clock import Clock
from shared.config import Settings
from shared.crypto.user_index import UserIndex
from shared.db import RequestPool
from shared.http.admission import FairGate
from shared.http.clientip import Network
from shared.store.follower import Follower
from shared.store.relay import Relay
from shared.store.unit_of_work import Outbox

SETTINGS = web.AppKey("settings", Settings)
POOL = web.AppKey("pool", RequestPool)
OUTBOX = web.AppKey("outbox", Outbox)
PEOPLE = web.AppKey("people", People)
PROJECTED = web.AppKey("projected", Projected)
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
