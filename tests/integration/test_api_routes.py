"""The application's routes, as requests are matched against them."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.routing import compile_path

from frontoffice.web.app import ROUTERS


def _sample_path(path: str) -> str:
    """A concrete path of a route's pattern: digits for an ``int`` parameter, a word otherwise."""
    _, _, convertors = compile_path(path)
    for name, convertor in convertors.items():
        value = "7" if type(convertor).__name__ == "IntegerConvertor" else "sample7"
        path = re.sub(r"\{" + name + r"(:[^}]*)?\}", value, path)
    return path


def test_no_path_matches_routes_of_two_routers() -> None:
    """The routers are included in the order that serves the contact path fastest (web/app.py); that
    order is free only while no request could be answered by routes of two routers."""
    routes: list[tuple[int, str, set[str], re.Pattern[str]]] = []
    for n, (prefix, router) in enumerate(ROUTERS):
        for route in router.routes:
            if isinstance(route, APIRoute):
                methods = set(route.methods or ())
            elif isinstance(route, APIWebSocketRoute):
                methods = {"WEBSOCKET"}
            else:
                continue
            path = prefix + route.path
            routes.append((n, path, methods, compile_path(path)[0]))
    assert len(routes) > 100  # the routers' routes are all seen
    overlaps = [
        (path_a, path_b)
        for router_a, path_a, methods_a, regex_a in routes
        for router_b, path_b, methods_b, _ in routes
        if router_a != router_b and methods_a & methods_b and regex_a.match(_sample_path(path_b))
    ]
    assert overlaps == []


def test_the_check_sees_an_overlap() -> None:
    """The check above finds a route that would capture another router's path."""
    captures = compile_path("/api/v1/customers/{customer_id}")[0]
    assert captures.match(_sample_path("/api/v1/customers/lookup"))
    assert captures.match(_sample_path("/api/v1/customers/{other}"))


def _dependency_calls(dependant: Dependant) -> Iterator[tuple[str, object]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield getattr(sub.call, "__qualname__", repr(sub.call)), sub.call
        yield from _dependency_calls(sub)


def test_every_handler_and_dependency_runs_on_the_loop() -> None:
    """FastAPI runs a plain ``def`` handler or dependency in its thread pool: a thread hop (queue,
    condition, GIL hand-over) per request, seen as 3 % of the contact path's CPU when the
    Idempotency-Key header's check was one. Every handler and dependency is ``async def``."""
    sync: list[str] = []
    for prefix, router in ROUTERS:
        for route in router.routes:
            if not isinstance(route, APIRoute | APIWebSocketRoute):
                continue
            calls = [(route.endpoint.__qualname__, route.endpoint), *_dependency_calls(route.dependant)]
            sync += [
                f"{prefix}{route.path}: {name}"
                for name, call in calls
                if not inspect.iscoroutinefunction(call) and not inspect.isasyncgenfunction(call)
            ]
    assert sync == []
