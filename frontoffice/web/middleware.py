"""ASGI middleware: request size limit, language, request log line and Prometheus metrics."""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from frontoffice.i18n import current_language, gettext, negotiate

__all__ = ["BodyLimit", "Observe", "StrictJson", "metrics_registry", "replaying", "then"]

log = logging.getLogger("frontoffice.http")


def metrics_registry() -> tuple[CollectorRegistry, Counter, Histogram]:
    registry = CollectorRegistry()
    requests = Counter(
        "frontoffice_http_requests", "HTTP requests", ["method", "route", "status"], registry=registry
    )
    latency = Histogram(
        "frontoffice_http_request_seconds",
        "HTTP request duration",
        ["method", "route"],
        registry=registry,
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    )
    return registry, requests, latency


class _TooLarge(HTTPException):
    """Raised while the body is read: an ``HTTPException``, so the framework's body parser lets it
    through as it is (any other exception there becomes a 400 "error parsing the body") and the
    answer is the 413 this limit promises, with chunked bodies as with ``Content-Length``."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, "The request body is too large")
        self.details = {"max_bytes": limit}


class BodyLimit:
    """Rejects bodies over ``max_bytes`` with 413, by Content-Length and while streaming (chunked).
    ``larger`` names paths allowed more (file uploads: their own limit, checked again by the handler)."""

    def __init__(self, app: ASGIApp, max_bytes: int, larger: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = dict(larger or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(scope.get("path", ""), self.max_bytes)
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > limit
                except ValueError:
                    too_big = True
                if too_big:
                    await self._reject(send, limit)
                    return
                if not _chunked(scope):
                    # The server reads no more than Content-Length says (HTTP/1.1 framing), and that
                    # is within the limit: nothing to count while the body streams.
                    await self.app(scope, receive, send)
                    return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._reject(send, limit)

    async def _reject(self, send: Send, limit: int) -> None:
        body = json.dumps(
            {
                "error_id": "body-too-large",
                "message": gettext("The request body is too large"),
                "details": {"max_bytes": limit},
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _chunked(scope: Scope) -> bool:
    """Whether the request also says ``Transfer-Encoding`` (then its length is not Content-Length's)."""
    return any(name == b"transfer-encoding" for name, _ in scope.get("headers", []))


# What JSON bodies may not hold although Python's parser takes them: the constants NaN, Infinity and
# -Infinity (not JSON, RFC 8259 §6; SQLite would store them as invalid JSON and PostgreSQL refuses
# them), numbers too large for a float (they become Infinity), and the NUL character (PostgreSQL
# cannot store it in text, and no form or integration means it). Bodies are searched for these
# first, so an ordinary body is parsed only once (by the route).
_SUSPECT_JSON = re.compile(rb"NaN|Infinity|\\u0000|[eE][+]?[0-9]{3}|[0-9]{300}")


def N_(message: str) -> str:
    """Mark a message for the catalogs; it is translated when the answer is sent."""
    return message


_NOT_FINITE = N_("Numbers must be finite: NaN and Infinity are not JSON")
_NUL_CHARACTER = N_("Text must not contain the NUL character (U+0000)")


class _NotStrictJson(ValueError):
    def __init__(self, loc: list[str | int], message: str, kind: str) -> None:
        super().__init__(message)
        self.loc, self.message, self.kind = loc, message, kind


def _check_value(value: Any, loc: list[str | int]) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise _NotStrictJson(loc, _NOT_FINITE, "finite_number")
    if isinstance(value, str) and "\x00" in value:
        raise _NotStrictJson(loc, _NUL_CHARACTER, "nul_character")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_value(key, [*loc, key])
            _check_value(item, [*loc, key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_value(item, [*loc, index])


def strict_json_problem(body: bytes) -> _NotStrictJson | None:
    """Why a JSON body is refused (see ``_SUSPECT_JSON``), or ``None``; a body that is not JSON at
    all is the route's to refuse (422 ``json_invalid``)."""
    if not _SUSPECT_JSON.search(body):
        return None
    try:
        # Python's parser reads NaN and Infinity as floats (and 1e999 as Infinity): found with
        # their place by the walk.
        document = json.loads(body)
    except ValueError:  # not JSON (UnicodeDecodeError is a ValueError too): the route answers
        return None
    try:
        _check_value(document, ["body"])
    except _NotStrictJson as problem:
        return problem
    return None


class StrictJson:
    """Refuses, with 422 ``validation-failed`` naming the field, JSON bodies holding NaN, Infinity or
    a NUL character, and URLs holding a NUL (``%00``); see ``_SUSPECT_JSON`` for why."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b""):
            await _send_validation(send, ["query"], _NUL_CHARACTER, "nul_character")
            return
        if scope.get("method") not in ("POST", "PUT", "PATCH") or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, then(message, receive), send)
                return
            chunks.append(message.get("body", b""))
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        problem = strict_json_problem(body)
        if problem is not None:
            await _send_validation(send, problem.loc, problem.message, problem.kind)
            return
        await self.app(scope, replaying(body, receive), send)


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            media: bytes = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return False


def replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands an already-read body to the app, then the connection's own messages
    (the disconnect): for a middleware or route that read the body before passing the request on."""
    return then({"type": "http.request", "body": body, "more_body": False}, receive)


def then(first: Message, receive: Receive) -> Receive:
    """A ``receive`` that gives ``first`` once, then the connection's own messages."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if not given:
            given = True
            return first
        return await receive()

    return replay


async def _send_validation(send: Send, loc: list[str | int], message: str, kind: str) -> None:
    errors = [{"loc": [str(p) for p in loc], "message": gettext(message), "type": kind}]
    body = json.dumps(
        {
            "error_id": "validation-failed",
            "message": gettext("The request is not valid"),
            "details": {"errors": errors},
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 422,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Observe:
    """Sets the request language, logs one line per request, and counts it for ``/metrics``."""

    def __init__(self, app: ASGIApp, requests: Counter, latency: Histogram, default_language: str) -> None:
        self.app = app
        self.requests = requests
        self.latency = latency
        self.default_language = default_language
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        lang = headers.get(b"accept-language", b"").decode("latin-1")
        cookie_lang = _cookie(headers.get(b"cookie", b"").decode("latin-1"), "fo_lang")
        current_language.set(
            cookie_lang if cookie_lang in ("en", "ru") else negotiate(lang, self.default_language)
        )
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            route: Any = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            key = (method, path, status)
            counted = self._children.get(key)
            if counted is None:
                # prometheus_client's labels() takes a lock and builds its key on every call: the
                # series of a (method, route, status) are looked up once (routes and statuses are few).
                counted = self._children[key] = (
                    self.requests.labels(method, path, str(status)),
                    self.latency.labels(method, path),
                )
            counted[0].inc()
            counted[1].observe(elapsed)
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "request",
                    extra={
                        "method": method,
                        "path": scope.get("path"),
                        "status": status,
                        "ms": round(elapsed * 1000, 2),
                    },
                )


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None
