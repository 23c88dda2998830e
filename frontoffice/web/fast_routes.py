"""Routes of the contact path answered without FastAPI's per-request machinery, for well-formed requests.

A contact's life takes three requests: it is posted (``POST /api/v1/interactions``), its offer is
accepted and the contact is completed. FastAPI spends more CPU on each (matching the request against
the route table, solving the endpoint's dependencies, validating and serialising) than the ACD spends
on the command itself (``bench/offer_latency.py``). A :class:`FastRoute` is matched before every other
route and answers a request whose input it can read as it is: the same permission check
(:func:`~frontoffice.web.security.current_actor`), the same body model validated the way FastAPI
validates it, the same use case and the same answer. Anything else — a body that is not JSON or not
valid, a missing or unusual ``Content-Type`` — it hands to the FastAPI route of the same path (its
``declined`` step), so every error answer is the one FastAPI gives. The FastAPI routes stay what
OpenAPI documents.

Errors the use case raises (a domain error, a refused permission) go to the application's exception
handlers, as from any route. Tests: ``tests/integration/test_fast_routes.py`` (each request answered
the same with and without the fast routes).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .middleware import replaying

__all__ = ["DECLINED", "Declined", "FastRoute", "Handler", "json_body", "with_fast_routes"]

# Set in the scope of a request a fast route handed back, so that matching it again skips them.
DECLINED = "frontoffice.fast_route_declined"


class Declined(Exception):
    """The request is not one the fast route answers as it is: FastAPI's route answers it."""


# A fast handler: the request (body already read: ``await request.body()`` costs nothing more) to
# its answer; raises Declined to hand the request to FastAPI's route.
Handler = Callable[[Request], Awaitable[Response]]


def json_body(request: Request, body: bytes) -> Any:
    """The JSON document of a request with a JSON ``Content-Type`` (as FastAPI reads it), or
    :class:`Declined` (no such type, not JSON, empty)."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    kind, _, subtype = media.partition("/")
    if not body or kind != "application" or not (subtype == "json" or subtype.endswith("+json")):
        raise Declined
    try:
        return json.loads(body)
    except ValueError:
        raise Declined from None


class _Endpoint:
    """The ASGI app of a fast route: its handler, or, when it declines, the router again without it."""

    def __init__(self, handler: Handler, router: ASGIApp) -> None:
        self.handler = handler
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        body = await request.body()
        try:
            response = await self.handler(request)
        except Declined:
            scope[DECLINED] = True
            await self.router(scope, replaying(body, receive), send)
            return
        await response(scope, receive, send)


class FastRoute(Route):
    """A ``POST`` route answered by a fast handler (see the module docstring). ``path`` may convert
    its parameters (``{id:int}``: another path is FastAPI's to refuse); the route is named by
    ``documented``, the FastAPI route's template, in the request metrics."""

    def __init__(self, path: str, handler: Handler, router: ASGIApp, documented: str) -> None:
        super().__init__(path, _Endpoint(handler, router), methods=["POST"], include_in_schema=False)
        self.path = documented  # matching uses the pattern compiled from ``path`` above

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope.get(DECLINED):
            return Match.NONE, {}
        match, child = super().matches(scope)
        if match is not Match.FULL:
            return Match.NONE, {}  # another method is FastAPI's to answer (405 with its Allow header)
        child["route"] = self  # named in the request metrics (FastAPI's router sets it for its own)
        return match, child


def with_fast_routes(routes: list[BaseRoute], fast: list[tuple[str, str, Handler]], router: ASGIApp) -> None:
    """Put fast routes for ``fast`` (path pattern, documented template, handler) first in ``routes``
    (the application router's: ``router``, where a declined request goes again)."""
    routes[:0] = [FastRoute(path, handler, router, documented) for path, documented, handler in fast]
