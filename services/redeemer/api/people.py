"""/v1/people/{user_id}: erasing a person's data (GDPR art. 17, PIPL art. 47)."""

from __future__ import annotations

import uuid

import msgspec
from aiohttp import web

from services.redeemer.api.registry import api
from services.redeemer.application.erasure import forget
from services.redeemer.context import OUTBOX, USERS
from shared.http.json import json_response
from shared.http.paths import path_user_id


class ErasedOut(msgspec.Struct):
    """What was erased"""

    user_id: str
    person: str  # the pseudonym their events carry; it now leads to no one
    keys_destroyed: int


@api.route(
    "DELETE",
    "/v1/people/{user_id}",
    summary="Erase a person's data",
    scope="admin",
    tags=["people"],
    responses={200: ErasedOut},
    errors=["invalid_request", "not_found"],
)
async def erase_person(request: web.Request, tenant_id: uuid.UUID) -> web.Response:
    """Destroys every key this person's values in the log were sealed with (so the log
    still verifies, and nothing in it says who they were), and renames what the redeemer
    keeps about them: a membership keeps its seat as `erased:{person}`. Recorded as
    `PersonForgotten`. A person the redeemer holds nothing of is `not_found`."""
    user_id = path_user_id(request)
    done = await forget(request.app[OUTBOX], request.app[USERS], tenant_id, user_id)
    return json_response(ErasedOut(user_id, done.person, done.keys_destroyed))
