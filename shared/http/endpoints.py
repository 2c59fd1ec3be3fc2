"""Declared endpoints: one declaration validates the request and documents it in OpenAPI.

A handler is registered with its body type, query type, scope, responses and the problem
codes it can answer. The wrapper decodes the body and query with exactly those msgspec
types and checks the scope before the handler runs; `Api.spec()` builds the OpenAPI 3.1
document from the same declarations, so the document cannot drift from what is enforced.
"""

from __future__ import annotations

import inspect
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiohttp import web

from shared.http.auth import AUDIT_SCOPE, CREDENTIAL, LOG_SCOPE, Principal, principal
from shared.http.idempotency import IDEMPOTENCY
from shared.http.json import read_json
from shared.http.problems import CATALOGUE, Problem
from shared.http.ratelimit import RATE_LIMITER, Standing

Handler = Callable[..., Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Media:
    """A non-JSON response (an image, a PDF, a page)."""

    content_type: str
    description: str = ""


@dataclass
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    description: str
    scope: str | None
    body: type | None
    query: type | None
    responses: dict[int, type | Media | None]
    errors: tuple[str, ...]
    tags: tuple[str, ...]
    path_params: dict[str, dict[str, Any]] = field(default_factory=dict)


_PATH_PARAM = re.compile(r"{(\w+)(?::[^}]*)?}")


def _path_param_schema(name: str, path: str) -> dict[str, Any]:
    if name.endswith("_id"):
        return {"type": "string", "format": "uuid"}
    pattern = re.search(rf"{{{name}:([^}}]*)}}", path)
    if pattern:
        return {"type": "string", "enum": pattern.group(1).split("|")}
    return {"type": "string"}


def _decode_query(request: web.Request, type_: type) -> Any:
    params: dict[str, Any] = {}
    for key in request.query:
        values = request.query.getall(key)
        params[key] = values if len(values) > 1 else values[0]
    try:
        return msgspec.convert(params, type_, strict=False)
    except msgspec.ValidationError as exc:
        raise Problem("invalid_request", f"query: {exc}") from None


class Api:
    def __init__(self, title: str, version: str, description: str) -> None:
        self.title = title
        self.version = version
        self.description = description
        self.endpoints: list[Endpoint] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        description: str = "",
        scope: str | None = None,
        body: type | None = None,
        query: type | None = None,
        responses: Mapping[int, type | Media | None],
        errors: Sequence[str] = (),
        tags: Sequence[str] = (),
        per_user: bool = False,
    ) -> Callable[[Handler], Handler]:
        """Register `handler`; it is called with the keyword arguments it names among
        `tenant_id`, `body` and `query`, already checked and decoded. Every route with a
        scope is rate limited per API key and tenant; `per_user` also per the body's
        `user_id`."""

        def register(handler: Handler) -> Handler:
            wanted = set(inspect.signature(handler).parameters) - {"request"}
            unknown = wanted - {"tenant_id", "body", "query"}
            if unknown:
                raise TypeError(f"{handler.__name__}: unknown parameters {unknown}")

            async def wrapper(request: web.Request) -> web.StreamResponse:
                kwargs: dict[str, Any] = {}
                who: Principal | None = None
                if scope is not None:
                    who = principal(request)
                    if scope == LOG_SCOPE:
                        if LOG_SCOPE not in who.scopes:
                            raise Problem("forbidden", "this needs the deployment's log token")
                    elif scope == AUDIT_SCOPE and LOG_SCOPE in who.scopes:
                        # The log token reads the whole log: it audits every tenant.
                        if "tenant_id" in wanted:
                            kwargs["tenant_id"] = None
                    else:
                        tenant_id: uuid.UUID = who.require(scope)
                        if "tenant_id" in wanted:
                            kwargs["tenant_id"] = tenant_id
                if query is not None:
                    kwargs["query"] = _decode_query(request, query)
                if body is not None:
                    kwargs["body"] = await read_json(request, body)
                standing = await _rate_limit(request, who, kwargs.get("body"), per_user)
                try:
                    response = await _handle(request, who, handler, kwargs)
                except Problem as problem:
                    if standing is not None:
                        problem.headers.update(standing.headers())
                    raise
                if standing is not None:
                    response.headers.update(standing.headers())
                return response

            wrapper.__name__ = handler.__name__
            wrapper.__doc__ = handler.__doc__
            self.endpoints.append(
                Endpoint(
                    method.upper(),
                    path,
                    wrapper,
                    summary,
                    description or inspect.getdoc(handler) or "",
                    scope,
                    body,
                    query,
                    dict(responses),
                    tuple(errors),
                    tuple(tags),
                    {n: _path_param_schema(n, path) for n in _PATH_PARAM.findall(path)},
                )
            )
            return wrapper

        return register

    def copy(self) -> Api:
        """A registry with the same endpoints, for one application to add its own to."""
        other = Api(self.title, self.version, self.description)
        other.endpoints = list(self.endpoints)
        return other

    def routes(self) -> list[web.RouteDef]:
        return [web.route(e.method, e.path, e.handler) for e in self.endpoints]

    # -- the OpenAPI document -------------------------------------------------------------

    def spec(self, servers: Sequence[str] = ()) -> dict[str, Any]:
        types: list[Any] = []
        for e in self.endpoints:
            if e.body is not None:
                types.append(e.body)
            types.extend(t for t in e.responses.values() if isinstance(t, type))
        schemas, components = msgspec.json.schema_components(
            types, ref_template="#/components/schemas/{name}"
        )
        schema_of = dict(zip(types, schemas, strict=True))
        components["Problem"] = _PROBLEM_SCHEMA
        paths: dict[str, dict[str, Any]] = {}
        for e in self.endpoints:
            path = _PATH_PARAM.sub(lambda m: "{" + m.group(1) + "}", e.path)
            operation: dict[str, Any] = {
                "operationId": e.handler.__name__,
                "summary": e.summary,
                "tags": list(e.tags),
                "responses": {},
            }
            if e.description:
                operation["description"] = e.description
            parameters = [
                {"name": name, "in": "path", "required": True, "schema": schema}
                for name, schema in e.path_params.items()
            ]
            if e.query is not None:
                parameters.extend(_query_parameters(e.query))
            if e.method == "POST" and e.scope is not None:
                parameters.append(_IDEMPOTENCY_HEADER)
            if parameters:
                operation["parameters"] = parameters
            if e.body is not None:
                operation["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": schema_of[e.body]}},
                }
            for status, out in e.responses.items():
                operation["responses"][str(status)] = _response(out, schema_of)
            for status, codes in _error_statuses(e).items():
                operation["responses"][str(status)] = {
                    "description": ", ".join(f"`{c}`" for c in sorted(codes)),
                    "content": {
                        "application/problem+json": {
                            "schema": {"$ref": "#/components/schemas/Problem"}
                        }
                    },
                }
            if e.scope is not None:
                operation["security"] = [{"bearer": []}]
                operation["x-qunma-scope"] = e.scope
            paths.setdefault(path, {})[e.method.lower()] = operation
        document: dict[str, Any] = {
            "openapi": "3.1.0",
            "info": {"title": self.title, "version": self.version, "description": self.description},
            "paths": paths,
            "components": {
                "schemas": components,
                "securitySchemes": {
                    "bearer": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "an API key, or the log token",
                    }
                },
            },
        }
        if servers:
            document["servers"] = [{"url": url} for url in servers]
        return document


async def _handle(
    request: web.Request, who: Principal | None, handler: Handler, kwargs: dict[str, Any]
) -> web.StreamResponse:
    """Run the handler, once per Idempotency-Key when the caller sends one."""
    idempotency = request.app.get(IDEMPOTENCY)
    if (
        who is not None
        and idempotency is not None
        and request.method == "POST"
        and "Idempotency-Key" in request.headers
    ):
        # Only now, with the scope checked: a replay answers only a caller that may ask
        # the question.
        return await idempotency.run(
            request,
            who,
            request[CREDENTIAL],
            _named_users(request, kwargs.get("body")),
            lambda: handler(request, **kwargs),
        )
    return await handler(request, **kwargs)


async def _rate_limit(
    request: web.Request, who: Principal | None, body: Any, per_user: bool
) -> Standing | None:
    limiter = request.app.get(RATE_LIMITER)
    if limiter is None or who is None or LOG_SCOPE in who.scopes:
        return None
    buckets = limiter.caller(who.key_id, who.tenant_id, who.rate)
    user_id = getattr(body, "user_id", None)
    if per_user and isinstance(user_id, str):
        buckets += limiter.user(who.tenant_id, user_id)
    return await limiter.take(buckets)


def _named_users(request: web.Request, body: Any) -> list[str]:
    """The user ids a request names (its body's `user_id`, its path's): what an answer
    kept for it is about, so erasing the person erases the answer too."""
    named = (getattr(body, "user_id", None), request.match_info.get("user_id"))
    return [v for v in named if isinstance(v, str)]


def _response(out: type | Media | None, schema_of: dict[Any, Any]) -> dict[str, Any]:
    if out is None:
        return {"description": "no content"}
    if isinstance(out, Media):
        return {
            "description": out.description or out.content_type,
            "content": {
                out.content_type: {
                    "schema": {"type": "string", "contentMediaType": out.content_type}
                }
            },
        }
    return {
        "description": out.__doc__.strip().splitlines()[0] if out.__doc__ else "OK",
        "content": {"application/json": {"schema": schema_of[out]}},
    }


def _error_statuses(e: Endpoint) -> dict[int, set[str]]:
    codes = set(e.errors)
    if e.scope is not None:
        codes |= {"unauthorized", "forbidden", "rate_limited"}
    if e.body is not None:
        codes |= {
            "malformed_json",
            "invalid_request",
            "unsupported_media_type",
            "payload_too_large",
        }
    if e.query is not None:
        codes.add("invalid_request")
    if e.method == "POST" and e.scope is not None:
        codes |= {"idempotency_key_reused", "idempotency_in_progress"}
    by_status: dict[int, set[str]] = {}
    for code in codes:
        by_status.setdefault(CATALOGUE[code][0], set()).add(code)
    return by_status


def _query_parameters(type_: type) -> list[dict[str, Any]]:
    (schema,), components = msgspec.json.schema_components([type_])
    name = schema["$ref"].rsplit("/", 1)[1]
    body = components[name]
    required = set(body.get("required", []))
    return [
        {"name": prop, "in": "query", "required": prop in required, "schema": sub}
        for prop, sub in body.get("properties", {}).items()
    ]


_IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Send the same key again, with the same API key and body, to get the "
    "first response again (24 hours).",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}

_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status", "code", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string", "enum": sorted(CATALOGUE)},
        "detail": {"type": "string"},
        "message_zh": {"type": "string"},
        "fallback_url": {"type": "string", "format": "uri"},
    },
}


def openapi_route(api: Api) -> web.RouteDef:
    document: list[bytes] = []  # built on first request, when every route is registered

    async def openapi(request: web.Request) -> web.Response:
        if not document:
            document.append(msgspec.json.encode(api.spec()))
        return web.Response(body=document[0], content_type="application/json")

    return web.get("/openapi.json", openapi)
